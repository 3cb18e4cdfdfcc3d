"""Runs inside the original t5 package's venv (t5==0.9.4, built by t5_env.py): answers a list of
jobs about what the released code does, so that tests can compare t5mtf against it.

Usage: t5_oracle.py REQUEST.json RESPONSE.json. Every job names an original task (as registered
by ``t5.data.tasks``) and gives rows in the TFDS feature layout (JSON: str, int, float, lists,
nested dicts). Jobs:

- ``{"op": "preprocess", "task": T, "rows": [...]}``: the task's preprocessors up to its cache
  placeholder (text format, then tokenize), one row at a time -> per row a list of output dicts
  (strings decoded, token ids as lists).
- ``{"op": "postprocess", "task": T, "texts": [...], "is_target": b, "examples": [...]}``.
- ``{"op": "metrics", "task": T, "targets": [...], "predictions": [...], "examples": [...]}``:
  both postprocessed as seqio's evaluator does, then the task's metric fns.
- ``{"op": "call", "module": M, "fn": F, "args": [...], "kwargs": {...}}``: any function of the
  original package with JSON arguments (metrics on plain lists, for example).
- ``{"op": "noise", "fn": F, ...}``: a noise mask or noise transform of the objectives (``noise``).
- ``{"op": "mixture_rates", "name": M}``: the released mixture's rate of each of its tasks.
"""
import importlib
import json
import math
import os
import sys

import numpy as np
import tensorflow as tf

tf.get_logger().setLevel("ERROR")
import seqio  # noqa: E402

# The released vocabulary lives on GCS; the project ships the same file (sha256-pinned).
_init = seqio.SentencePieceVocabulary.__init__
seqio.SentencePieceVocabulary.__init__ = lambda self, path, *a, **k: _init(
    self, os.environ["T5MTF_SPM_PATH"] if path.startswith("gs://") else path, *a, **k)
import t5.data.mixtures  # noqa: E402,F401  (registers the tasks and mixtures)

INT32_KEYS = {"idx", "paragraph", "question", "answer", "passage", "query", "span1_index",
              "span2_index"}


def to_tensor(value, key=""):
  if isinstance(value, dict):
    return {k: to_tensor(v, k) for k, v in value.items()}
  if isinstance(value, bool):
    return tf.constant(value)
  if isinstance(value, int):
    return tf.constant(value, tf.int32 if key in INT32_KEYS else tf.int64)
  if isinstance(value, float):
    return tf.constant(value, tf.float32)
  if isinstance(value, list):
    if value and isinstance(value[0], (int, float)) and not isinstance(value[0], bool):
      return tf.constant(value)
    return tf.constant(value, tf.string, shape=[len(value)])
  return tf.constant(value, tf.string)


def to_json(value):
  if isinstance(value, tf.Tensor):
    return to_json(value.numpy())
  if isinstance(value, dict):
    return {k: to_json(v) for k, v in value.items()}
  if isinstance(value, (bytes, np.bytes_)):
    return value.decode("utf-8")
  if isinstance(value, np.ndarray):
    return [to_json(v) for v in value.tolist()]
  if isinstance(value, (list, tuple)):
    return [to_json(v) for v in value]
  if isinstance(value, (np.floating, float)):
    v = float(value)
    return v if math.isfinite(v) else repr(v)
  if isinstance(value, np.integer):
    return int(value)
  if isinstance(value, np.bool_):
    return bool(value)
  return value


def spec_of(value, key=""):
  t = to_tensor(value, key)
  return tf.nest.map_structure(
      lambda x: tf.TensorSpec([None] * x.shape.rank, x.dtype), t)


def rows_dataset(get_rows, like):
  """The rows get_rows() returns at each iteration, typed like the row ``like``."""
  return tf.data.Dataset.from_generator(lambda: iter(get_rows()), output_signature=spec_of(like))


def preprocess(job):
  """Per row (a list of outputs each) with "per_row", else all rows as one dataset (one output
  per row expected: the caller uses it for tasks that neither filter nor expand), with
  "sequence_length" trimmed as Task.get_dataset trims (EOS kept)."""
  task = seqio.get_mixture_or_task(job["task"])
  rows = job["rows"]
  if not job.get("per_row"):
    ds = task.preprocess_precache(rows_dataset(lambda: rows, rows[0]), seed=0)
    if job.get("sequence_length"):  # What Task.get_dataset does after its cache step.
      length = job["sequence_length"]
      ds = task.preprocess_postcache(ds, sequence_length=length, seed=0)
      ds = task._trim_output_features(ds, sequence_length=length)
    return [[to_json(ex)] for ex in ds.as_numpy_iterator()]
  try:
    return _rows_in_one_pipeline(task, rows)
  except Exception:  # A row fails, or the task cannot be traced inside a flat_map: row by row.
    pass
  current = []  # One pipeline fed one row per iterator (traced once).
  ds = task.preprocess_precache(rows_dataset(lambda: current, rows[0]), seed=0)
  out = []
  for row in rows:
    current[:] = [row]
    try:
      out.append([to_json(ex) for ex in ds.as_numpy_iterator()])
    except Exception as e:  # A row the original cannot format: reported, the rest go on.
      out.append({"error": f"{type(e).__name__}: {str(e)[-500:]}"})
  return out


def _rows_in_one_pipeline(task, rows):
  """Each row through the task's preprocessors on its own (a flat_map over rows, traced once:
  a pipeline per row costs 0.2-0.5 s), its outputs tagged with its index -> per row a list.
  Fails where a preprocessor needs AutoGraph inside it (WSC's)."""
  def one_row(i, row):
    ds = task.preprocess_precache(tf.data.Dataset.from_tensors(row), seed=0)
    return ds.map(lambda ex: (i, ex))

  ds = rows_dataset(lambda: rows, rows[0]).enumerate().flat_map(one_row)
  out = [[] for _ in rows]
  for i, ex in ds.as_numpy_iterator():
    out[i].append(to_json(ex))
  return out


def _examples(job, n):
  return [to_json_example(e) for e in job.get("examples") or [{}] * n]


def to_json_example(e):
  # The original's postprocessors read features as numpy values (bytes for strings).
  def conv(v):
    if isinstance(v, str):
      return v.encode("utf-8")
    if isinstance(v, dict):
      return {k: conv(x) for k, x in v.items()}
    if isinstance(v, list):
      return np.array([conv(x) for x in v])
    return v
  return {k: conv(v) for k, v in e.items()}


def postprocess(job):
  task = seqio.get_mixture_or_task(job["task"])
  examples = _examples(job, len(job["texts"]))
  return [to_json(task.postprocess_fn(t, example=e, is_target=job["is_target"])
                  if task.postprocess_fn else t) for t, e in zip(job["texts"], examples)]


def metrics(job):
  task = seqio.get_mixture_or_task(job["task"])
  examples = _examples(job, len(job["targets"]))
  pp = task.postprocess_fn or (lambda t, **_: t)
  targets = [pp(t, example=e, is_target=True) for t, e in zip(job["targets"], examples)]
  predictions = [pp(p, example=e, is_target=False)
                 for p, e in zip(job["predictions"], examples)]
  result = {}
  if "numpy_seed" in job:  # ROUGE's bootstrap draws from numpy's global generator.
    np.random.seed(job["numpy_seed"])
  for fn in task.metric_fns:
    result.update(fn(targets, predictions))
  return to_json(result)


def call(job):
  fn = getattr(importlib.import_module(job["module"]), job["fn"])
  return to_json(fn(*job.get("args", []), **job.get("kwargs", {})))


def mixture_rates(job):
  """The released mixture ``job["name"]``'s rate of each task (rates that are numbers only:
  a rate_num_examples rate would need the TFDS data)."""
  mixture = seqio.get_mixture_or_task(job["name"])
  return {t.name: float(mixture.get_rate(t)) for t in mixture.tasks}


def glue_average(job):
  """The released eval_utils' GLUE average of {"task/metric": value} (one row)."""
  import pandas as pd
  from t5.evaluation import eval_utils
  names = eval_utils.METRIC_NAMES
  df = pd.DataFrame([{names[k].name: v for k, v in job["scores"].items()}])
  return float(eval_utils.compute_avg_glue(df)["Average GLUE Score"][0])


def pack(job):
  """mesh_tensorflow.transformer.dataset.pack_or_pad (what t5's mesh models train on)."""
  from mesh_tensorflow.transformer import dataset as mtf_dataset
  keys = sorted(job["length"])
  ds = tf.data.Dataset.from_generator(
      lambda: ({k: np.asarray(ex[k], np.int32) for k in keys} for ex in job["examples"]),
      output_signature={k: tf.TensorSpec([None], tf.int32) for k in keys})
  ds = mtf_dataset.pack_or_pad(ds, job["length"], pack=True, feature_keys=keys)
  return [to_json(r) for r in ds.as_numpy_iterator()]


def train_step(job):
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  import t5_train_step
  return t5_train_step.train_step(job)


def decode(job):
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  import t5_train_step
  return t5_train_step.decode(job)


def noise(job):
  """t5.data.preprocessors' noise functions on given token lists:
  ``{"fn": F, "cases": [{"tokens": [...], "mask": [...]}]}`` for a transform (tokens, noise
  mask, vocabulary, seeds) -> tokens, or ``{"fn": "random_spans_noise_mask", "lengths": [...],
  "noise_density": d, "mean_noise_span_length": m}`` -> one mask per length;
  ``{"fn": "random_prefix_noise_mask", "lengths": [...], "draws": n}`` -> per length, the number
  of noise tokens (the prefix) under n seeds."""
  from t5.data import preprocessors as p
  import t5.data
  fn = getattr(p, job["fn"])
  seeds = tf.constant([[1, 2], [3, 4]], tf.int32)
  if job["fn"] == "random_spans_noise_mask":
    return [to_json(fn(n, job["noise_density"], seeds, job["mean_noise_span_length"]).numpy())
            for n in job["lengths"]]
  if job["fn"] == "random_prefix_noise_mask":  # How many tokens are noise, over many seeds.
    return [[int(tf.reduce_sum(tf.cast(fn(n, 0.5, tf.constant([[i, n]])), tf.int32)))
             for i in range(job["draws"])] for n in job["lengths"]]
  vocabulary = t5.data.get_default_vocabulary()
  return [to_json(fn(tf.constant(c["tokens"], tf.int32), tf.constant(c["mask"], tf.bool),
                     vocabulary, seeds).numpy()) for c in job["cases"]]


def vocabulary(job):
  """The released default vocabulary (seqio's SentencePieceVocabulary with 100 extra ids) on
  ``{"encode": [text], "decode": [[id]]}``: encode, decode and decode_tf (what predictions
  go through)."""
  import t5.data
  v = t5.data.get_default_vocabulary()
  return {"encode": [list(map(int, v.encode(t))) for t in job["encode"]],
          "decode": [v.decode(ids) for ids in job["decode"]],
          "decode_tf": [v.decode_tf(tf.constant(ids, tf.int32)).numpy().decode("utf-8")
                        for ids in job["decode"]]}


OPS = {"noise": noise, "vocabulary": vocabulary, "decode": decode, "pack": pack, "train_step": train_step,
       "glue_average": glue_average, "preprocess": preprocess, "postprocess": postprocess,
       "metrics": metrics, "call": call, "mixture_rates": mixture_rates}


def main(request_path, response_path):
  with open(request_path) as f:
    jobs = json.load(f)
  answers = []
  for job in jobs:
    try:
      answers.append({"ok": OPS[job["op"]](job)})
    except Exception as e:  # Reported per job: the test names the job that failed.
      answers.append({"error": f"{type(e).__name__}: {e}"})
  with open(response_path, "w") as f:
    json.dump(answers, f)


if __name__ == "__main__":
  main(*sys.argv[1:3])
