"""Runs in the Hugging Face peer venv: resident memory of T5 training steps (AdaFactor), as JSON
with the fields bench/memory.py prints (MiB).

    python hf_memory.py SIZE BATCH INPUTS TARGETS STEPS THREADS
"""
import json
import sys

import torch
from hf_train_step import build, train_step  # This script's folder is on sys.path.
from procmem import peak_mb, rss_mb


def main(size, batch, inputs_length, targets_length, steps, threads):
  runtime = rss_mb()  # After importing torch and transformers.
  model, opt, inputs, labels = build(size, batch, inputs_length, targets_length, threads)
  weights = sum(p.numel() * p.element_size() for p in model.parameters())
  after_init = rss_mb()
  for _ in range(int(steps)):
    train_step(model, opt, inputs, labels)
  slots = sum(t.numel() * t.element_size() for state in opt.state.values()
              for t in state.values() if torch.is_tensor(t))
  print(json.dumps(dict(runtime=runtime, weights=weights / 2 ** 20, slots=slots / 2 ** 20,
                        after_init=after_init, peak=peak_mb())))


if __name__ == "__main__":
  main(*sys.argv[1:])
