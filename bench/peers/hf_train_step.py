"""Runs in the Hugging Face peer venv: seconds per T5 training step (AdaFactor), median.

    python hf_train_step.py THREADS BATCH INPUTS TARGETS STEPS
"""
import sys
import time

import numpy as np
import torch
from transformers import T5Config, T5ForConditionalGeneration
from transformers.optimization import Adafactor


def main(threads, batch, inputs_length, targets_length, steps):
  torch.set_num_threads(int(threads))
  torch.manual_seed(0)
  config = T5Config(vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6,
                    num_heads=8, dropout_rate=0.1, feed_forward_proj="relu",
                    tie_word_embeddings=True, decoder_start_token_id=0)
  model = T5ForConditionalGeneration(config).train()
  opt = Adafactor(model.parameters(), lr=1e-3, scale_parameter=True, relative_step=False,
                  warmup_init=False)
  b, li, lt = int(batch), int(inputs_length), int(targets_length)
  inputs = torch.randint(2, 32000, (b, li))
  labels = torch.randint(2, 32000, (b, lt))

  def step():
    opt.zero_grad()
    loss = model(input_ids=inputs, labels=labels).loss
    loss.backward()
    opt.step()
  step()
  times = []
  for _ in range(int(steps)):
    t = time.perf_counter()
    step()
    times.append(time.perf_counter() - t)
  print(float(np.median(times)))


if __name__ == "__main__":
  main(*sys.argv[1:])
