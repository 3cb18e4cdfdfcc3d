"""Runs in the original-t5 peer venv (t5==0.9.4, seqio): examples/s of span corruption + packing.

    python t5_pipeline.py SPM_MODEL TEXT_FILE MODE N
MODE "pretokenized": 568-token documents from TEXT_FILE.568.npy; MODE "text": tokenization in
the pipeline.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np
import seqio
import t5.data.preprocessors as t5_prep
import tensorflow as tf

from bench import common  # noqa: E402  (numpy-only helpers)

LENGTHS = {"inputs": 512, "targets": 114}


def main(spm, text_file, mode, n):
  n = int(n)
  vocab = seqio.SentencePieceVocabulary(spm, extra_ids=100)
  features = {"inputs": seqio.Feature(vocab), "targets": seqio.Feature(vocab)}
  lines = tf.data.TextLineDataset(text_file)
  if mode == "pretokenized":  # Documents of 568 tokens, written by bench/pipeline.py.
    ds = tf.data.Dataset.from_tensor_slices({"targets": np.load(text_file + ".568.npy")})
  else:
    ds = lines.map(lambda t: {"targets": t})
    ds = seqio.preprocessors.tokenize(ds, features, copy_pretokenized=False)
  ds = ds.repeat()
  ds = t5_prep.span_corruption(ds, sequence_length=LENGTHS, output_features=features)
  ds = seqio.preprocessors.append_eos_after_trim(ds, output_features=features,
                                                 sequence_length=LENGTHS)
  ds = seqio.utils.trim_and_pack_dataset(ds, LENGTHS)
  print(common.examples_per_second(ds, n))


if __name__ == "__main__":
  main(*sys.argv[1:])
