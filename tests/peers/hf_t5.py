"""Runs inside the Hugging Face peer environment (torch + transformers), never imported by t5mtf.

    python hf_t5.py MODEL_DIR IN.npz OUT.npz

IN.npz: inputs, inputs_mask [b, Li]; targets, targets_mask [b, Lt]; decode_length (scalar).
OUT.npz: token_ll [b, Lt] (log p(target_t | ...), 0 on padding) and greedy [b, decode_length].
"""
import sys

import numpy as np
import torch
from transformers import T5ForConditionalGeneration


def main(model_dir, in_path, out_path):
  torch.set_num_threads(1)
  data = np.load(in_path)
  model = T5ForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32).eval()
  inputs = torch.tensor(data["inputs"], dtype=torch.long)
  inputs_mask = torch.tensor(data["inputs_mask"], dtype=torch.long)
  targets = torch.tensor(data["targets"], dtype=torch.long)
  targets_mask = torch.tensor(data["targets_mask"], dtype=torch.long)
  with torch.no_grad():
    labels = targets.masked_fill(targets_mask == 0, -100)
    logits = model(input_ids=inputs, attention_mask=inputs_mask, labels=labels).logits
    logp = torch.log_softmax(logits.double(), dim=-1)
    token_ll = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1) * targets_mask
    length = int(data["decode_length"])
    greedy = model.generate(input_ids=inputs, attention_mask=inputs_mask, do_sample=False,
                            num_beams=1, max_new_tokens=length, min_new_tokens=0,
                            decoder_start_token_id=0, eos_token_id=1, pad_token_id=0)
  out = np.zeros((inputs.shape[0], length), np.int64)
  g = greedy[:, 1:].numpy()  # Drop the decoder start token.
  out[:, :g.shape[1]] = g
  np.savez(out_path, token_ll=token_ll.numpy(), greedy=out)


if __name__ == "__main__":
  main(*sys.argv[1:])
