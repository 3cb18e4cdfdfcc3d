"""Runs in the Hugging Face peer venv: resident memory of T5 training steps (AdaFactor), as JSON
with the fields bench/memory.py prints (MiB).

    python hf_memory.py SIZE BATCH INPUTS TARGETS STEPS THREADS
"""
import json
import resource
import sys


def rss_mb():
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith("VmRSS:"):
        return int(line.split()[1]) / 1024
  return float("nan")


from hf_train_step import SIZES  # noqa: E402  (this script's folder is on sys.path)


def main(size, batch, inputs_length, targets_length, steps, threads):
  import torch
  from transformers import T5Config, T5ForConditionalGeneration
  from transformers.optimization import Adafactor
  runtime = rss_mb()
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
  inputs = torch.randint(2, 32000, (b, li))
  labels = torch.randint(2, 32000, (b, lt))
  weights = sum(p.numel() * p.element_size() for p in model.parameters())
  after_init = rss_mb()
  for _ in range(int(steps)):
    opt.zero_grad()
    model(input_ids=inputs, labels=labels).loss.backward()
    opt.step()
  slots = sum(t.numel() * t.element_size() for state in opt.state.values()
              for t in state.values() if torch.is_tensor(t))
  print(json.dumps(dict(runtime=runtime, weights=weights / 2 ** 20, slots=slots / 2 ** 20,
                        after_init=after_init,
                        peak=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))


if __name__ == "__main__":
  main(*sys.argv[1:])
