"""Runs in the Hugging Face peer venv: median seconds of ``generate`` and its outputs.

    python hf_decode.py MODEL_DIR IN.npz OUT.npz THREADS NEW_TOKENS BEAMS RUNS

Greedy (BEAMS=1) or beam search (length penalty 0.6, stopping as soon as the best beams are
finished); no minimum length; EOS id 1, decoder start and pad id 0, as T5.
"""
import sys
import time

import numpy as np
import torch
from transformers import T5ForConditionalGeneration


def main(model_dir, in_path, out_path, threads, new_tokens, beams, runs):
  torch.set_num_threads(int(threads))
  model = T5ForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32).eval()
  inputs = torch.tensor(np.load(in_path)["inputs"], dtype=torch.long)
  n, beams = int(new_tokens), int(beams)
  kwargs = dict(do_sample=False, num_beams=beams, max_new_tokens=n, min_new_tokens=0,
                decoder_start_token_id=0, eos_token_id=1, pad_token_id=0, use_cache=True)
  if beams > 1:
    kwargs.update(length_penalty=0.6, early_stopping=True)
  times = []
  with torch.no_grad():
    for _ in range(int(runs) + 1):  # The first is a warm-up.
      start = time.perf_counter()
      out = model.generate(input_ids=inputs, attention_mask=torch.ones_like(inputs), **kwargs)
      times.append(time.perf_counter() - start)
  ids = np.zeros((inputs.shape[0], n), np.int64)
  g = out[:, 1:].numpy()  # Drop the decoder start token.
  ids[:, :g.shape[1]] = g
  np.savez(out_path, ids=ids)
  print(float(np.median(times[1:])))


if __name__ == "__main__":
  main(*sys.argv[1:])
