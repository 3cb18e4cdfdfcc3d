"""Table 3 of the paper has no scores: it shows what each objective makes of one sentence. This
prints ours on the same sentence (real vocabulary), so the two can be compared by eye. At 15%
noise a 13-token sentence is often left untouched, so the seed shown is the first one under which
every noising objective changes something, as every row of the paper's table does."""
import tensorflow as tf

from t5mtf.data import objectives, registry
from t5mtf.data import vocab as vocab_lib

SENTENCE = "Thank you for inviting me to your party last week."
ROWS = ["prefix_lm", "bert_style", "deshuffling", "mass_style", "iid_replace_spans",
        "iid_drop_tokens", "span_corruption"]


def examples(seed=0):
  """[(objective, inputs text, targets text)] for the paper's example sentence."""
  vocab = vocab_lib.get_default_vocabulary()
  features = registry.default_output_features(vocab)
  ids = vocab.encode(SENTENCE)
  out = []
  for name in ROWS:
    ds = tf.data.Dataset.from_tensors({"targets": tf.constant(ids, tf.int32)})
    ex = next(iter(objectives.get_objective(name)(ds, features, seed=seed).as_numpy_iterator()))
    out.append((name, vocab.decode(ex["inputs"].tolist()), vocab.decode(ex["targets"].tolist())))
  return out


def first_telling_seed(limit=100):
  for seed in range(limit):
    rows = examples(seed)
    if all(inputs != SENTENCE for name, inputs, _ in rows if name != "prefix_lm"):
      return seed, rows
  raise RuntimeError(f"no seed below {limit} corrupts every objective")


def markdown():
  seed, rows = first_telling_seed()
  lines = [f"# Table 3: the objectives on \"{SENTENCE}\" (ours, seed {seed})", "",
           "| objective | inputs | targets |", "|---|---|---|"]
  for name, inputs, targets in rows:
    lines.append(f"| {name} | {inputs} | {targets} |")
  return "\n".join(lines)
