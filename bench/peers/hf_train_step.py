"""Runs in the Hugging Face peer venv: seconds per T5 training step (AdaFactor), median.

    python hf_train_step.py THREADS BATCH INPUTS TARGETS STEPS [SIZE] [PRECISION]

SIZE: tiny, small (default) or base, as t5mtf.models.sizes. PRECISION: fp32 (default) or
bf16_autocast (torch.autocast on the CPU: matmuls in bfloat16, fp32 weights, as our bfloat16
activations).
"""
import sys
import time

import numpy as np
import torch
from transformers import T5Config, T5ForConditionalGeneration
from transformers.optimization import Adafactor


SIZES = {"tiny": (64, 256, 4, 16, 2), "small": (512, 2048, 8, 64, 6),
         "base": (768, 3072, 12, 64, 12)}  # d_model, d_ff, heads, d_kv, layers per stack.


def build(size, batch, inputs_length, targets_length, threads):
  """(model, optimizer, inputs, labels): T5 of SIZE in training mode with AdaFactor as ours
  (scale_parameter, no relative step), a random batch."""
  torch.set_num_threads(int(threads))
  torch.manual_seed(0)
  d_model, d_ff, heads, d_kv, layers = SIZES[size]
  config = T5Config(vocab_size=32128, d_model=d_model, d_kv=d_kv, d_ff=d_ff, num_layers=layers,
                    num_heads=heads, dropout_rate=0.1, feed_forward_proj="relu",
                    tie_word_embeddings=True, decoder_start_token_id=0)
  model = T5ForConditionalGeneration(config).train()
  opt = Adafactor(model.parameters(), lr=1e-3, scale_parameter=True, relative_step=False,
                  warmup_init=False)
  b, li, lt = int(batch), int(inputs_length), int(targets_length)
  return model, opt, torch.randint(2, 32000, (b, li)), torch.randint(2, 32000, (b, lt))


def train_step(model, opt, inputs, labels, precision="fp32"):
  opt.zero_grad()
  with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16_autocast"):
    loss = model(input_ids=inputs, labels=labels).loss
  loss.backward()
  opt.step()


def main(threads, batch, inputs_length, targets_length, steps, size="small", precision="fp32"):
  model, opt, inputs, labels = build(size, batch, inputs_length, targets_length, threads)
  train_step(model, opt, inputs, labels, precision)
  times = []
  for _ in range(int(steps)):
    t = time.perf_counter()
    train_step(model, opt, inputs, labels, precision)
    times.append(time.perf_counter() - t)
  print(float(np.median(times)))

if __name__ == "__main__":
  main(*sys.argv[1:])
