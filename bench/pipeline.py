"""Pre-training input pipeline speed: span corruption (15%, mean span 3) + EOS + packing at
inputs 512 / targets 114, on the shipped English text, ours against the original t5 package
(t5==0.9.4 + seqio, its own venv built by tests/peers/t5_env.py) in one run.

    .venv/bin/python bench/pipeline.py [--examples 3000]

Two settings: "pretokenized", documents of 568 tokens cut from the tokenized text (the issue's
"span corruption on pre-tokenized 512-token documents": the objective, EOS and packing), and
"text", the whole thing from the text lines (short: novel and article lines) with SentencePiece
inside the pipeline. Also prints how many examples/s a
T5-small training step consumes here (batch 8 in ~6 s), for scale.

With ``--rounds N`` the two sides alternate N times per setting and the ratio printed is the
median of the rounds' ratios, so that a slow spell of a shared machine falls on both sides.
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench import common  # noqa: E402

LENGTHS = {"inputs": 512, "targets": 114}


def corpus_file():
  """The shipped pre-training text, one document (or line) per line."""
  from t5mtf.data.tasks import pretraining
  ds = pretraining.local_text_source().get_dataset("train")
  from t5mtf.data import vocab
  path = os.path.join(tempfile.mkdtemp(), "corpus.txt")
  ids = []
  with open(path, "w", encoding="utf-8") as f:
    for ex in ds.as_numpy_iterator():
      line = ex["text"].decode().replace("\n", " ")
      f.write(line + "\n")
      ids += vocab.get_default_vocabulary().encode(line)
  stream = np.asarray(ids, np.int32)
  np.save(path + ".568.npy", stream[:len(stream) // 568 * 568].reshape(-1, 568))
  return path


def ours(text_file, mode, n):
  from t5mtf.data import objectives, packing, preprocessors as prep, registry
  features = registry.default_output_features()
  vocab = features["targets"].vocabulary
  length, _ = objectives.random_spans_helper(LENGTHS["inputs"])
  if mode == "pretokenized":
    docs = tf.data.Dataset.from_tensor_slices({"targets": np.load(text_file + ".568.npy")})
    ds = prep.concat_and_split(docs.repeat(), length)
  else:
    lines = tf.data.TextLineDataset(text_file).map(lambda t: {"text": t})
    ds = prep.tokenize_and_split(lines.repeat(), vocab, length)
  ds = objectives.span_corruption(ds, features, seed=0)
  ds = prep.append_eos_after_trim(ds, features, LENGTHS)
  ds = packing.pack(ds, LENGTHS)
  return common.examples_per_second(ds, n)


def ensure_t5_peer():
  from tests.peers import t5_env
  return t5_env.python()


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--examples", type=int, default=3000)
  ap.add_argument("--rounds", type=int, default=3, help="alternations of the two sides")
  args = ap.parse_args()
  text = corpus_file()
  from t5mtf.data import vocab
  peer = ensure_t5_peer()
  print(f"span corruption + EOS + packing to 512/114 on the shipped text ({args.examples} "
        f"examples read in batches of 128 after a warm-up batch), {common.cpu_model()}; "
        f"{args.rounds} round(s), sides alternated")
  for mode in ("pretokenized", "text"):
    pairs = []
    for r in range(args.rounds):
      mine = ours(text, mode, args.examples)
      theirs = float(common.run_peer(peer, "t5_pipeline.py", vocab.DEFAULT_SPM_PATH, text, mode,
                                     args.examples))
      pairs.append((mine, theirs))
      print(f"  {mode:13s} round {r + 1}: t5mtf {mine:8.0f} ex/s   original t5 {theirs:8.0f} "
            f"ex/s   ratio {mine / theirs:.2f}x", flush=True)
    mine, theirs = (float(np.median(x)) for x in zip(*pairs))
    ratio = float(np.median([a / b for a, b in pairs]))
    print(f"  {mode:13s} median: t5mtf {mine:8.0f} ex/s   original t5 {theirs:8.0f} ex/s   "
          f"ratio {ratio:.2f}x (median of the rounds' ratios)")
  consumed = 8 / 6.0
  print(f"  a T5-small training step here consumes ~{consumed:.1f} examples/s "
        f"(batch 8 per ~6 s): the text pipeline runs {mine / consumed:.0f}x faster than that")


if __name__ == "__main__":
  main()
