"""Generic preprocessors: small pure functions ``dataset -> dataset``.

A Task lists them in order. A preprocessor may ask for ``sequence_length``, ``output_features`` or
``seed`` by naming them as keyword parameters; the Task passes what is asked for (as seqio does).
Per-example helpers do the work; ``map_over_dataset`` turns one into a preprocessor.
"""
import collections
import functools
import inspect
import threading

import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE


def map_over_dataset(fn):
  """Decorator: ``fn(example, **kw) -> example`` becomes ``fn(dataset, **kw) -> dataset``."""
  @functools.wraps(fn)
  def wrapper(dataset, **kwargs):
    return dataset.map(lambda ex: fn(ex, **kwargs), num_parallel_calls=AUTOTUNE,
                       deterministic=True)
  return wrapper


def call_with_wanted_kwargs(fn, dataset, **available):
  """Calls ``fn(dataset, ...)`` with those of ``available`` that ``fn`` names as parameters."""
  params = inspect.signature(fn).parameters
  wants_all = any(p.kind == p.VAR_KEYWORD for p in params.values())
  kwargs = {k: v for k, v in available.items() if wants_all or k in params}
  return fn(dataset, **kwargs)


def example_seeds(dataset, seed):
  """Zips each example with its own stateless seed [2] (int32), deterministic given ``seed``.

  Random preprocessors draw with ``tf.random.stateless_*`` from this seed, so the n-th example's
  noise depends only on (seed, n): parallel maps stay deterministic and a pipeline restarted at
  step s reproduces exactly what an uninterrupted one would have seen.
  """
  seeds = tf.data.Dataset.random(seed=seed).map(lambda r: tf.bitcast(r, tf.int32))
  return tf.data.Dataset.zip((dataset, seeds))


def map_with_seeds(fn):
  """Decorator: ``fn(example, seed, **kw)`` becomes a preprocessor ``(dataset, seed, **kw)``."""
  @functools.wraps(fn)
  def wrapper(dataset, seed=0, **kwargs):
    return example_seeds(dataset, seed).map(
        lambda ex, s: fn(ex, s, **kwargs), num_parallel_calls=AUTOTUNE, deterministic=True)
  return wrapper


@map_over_dataset
def rekey(ex, key_map):
  """``rekey({"a": x, "b": y}, key_map={"text": "a"}) -> {"text": x}``; None makes an empty string."""
  return {new: (ex[old] if old else tf.constant("")) for new, old in key_map.items()}


def tokenize(dataset, output_features, copy_pretokenized=True):
  """Encodes every string feature named in ``output_features`` with its vocabulary.

  ``{"inputs": "Hello world"} -> {"inputs": [8774, 296], "inputs_pretokenized": "Hello world"}``
  """
  def fn(ex):
    out = dict(ex)
    for name, feature in output_features.items():
      if name in ex and ex[name].dtype == tf.string:
        out[name] = feature.vocabulary.tf_encode(ex[name])
        if copy_pretokenized:
          out[name + "_pretokenized"] = ex[name]
    return out
  return dataset.map(fn, num_parallel_calls=AUTOTUNE, deterministic=True)


# Examples cut to fit ``sequence_length``, counted per (task, feature) as the pipeline runs, so
# that a run can say how many lost tokens (T5 trims, never drops; the count makes it visible).
TRIMMED = collections.Counter()
_TRIM_LOCK = threading.Lock()


def _count_trim(key, too_long):
  if too_long:
    with _TRIM_LOCK:
      TRIMMED[key.decode()] += 1
  return too_long


def trimmed_report():
  """{"task/feature": examples trimmed so far} (this process)."""
  with _TRIM_LOCK:
    return dict(TRIMMED)


def append_eos_after_trim(dataset, output_features, sequence_length, count_as=None):
  """Trims each feature to length-1 (if it adds EOS) and appends EOS; T5 trims, never drops.
  With ``count_as`` (a task name) every trimmed example is counted in ``TRIMMED``.

  ``{"targets": [5, 6, 7]}`` with sequence_length {"targets": 3} -> ``{"targets": [5, 6, 1]}``
  """
  def fn(ex):
    out = dict(ex)
    for name, feature in output_features.items():
      if name not in ex:
        continue
      ids = ex[name]
      length = (sequence_length or {}).get(name)
      if length is not None and count_as:
        keep = length - 1 if feature.add_eos else length
        tf.numpy_function(_count_trim, [f"{count_as}/{name}", tf.size(ids) > keep], tf.bool,
                          stateful=True)
      if feature.add_eos:
        if length is not None:
          ids = ids[:length - 1]
        ids = tf.concat([ids, [feature.vocabulary.eos_id]], axis=0)
      elif length is not None:
        ids = ids[:length]
      out[name] = ids
    return out
  return dataset.map(fn, num_parallel_calls=AUTOTUNE, deterministic=True)


def filter_empty(dataset, keys=("targets",)):
  """Drops examples whose token features are empty (nothing to learn from)."""
  return dataset.filter(lambda ex: tf.reduce_all([tf.size(ex[k]) > 0 for k in keys]))


def concat_and_split(dataset, length, feature="targets", group_size=256):
  """Treats the documents as one token stream and cuts it into pieces of exactly ``length``
  tokens (§3.1.4: pre-training text is a stream; T5's reduce_concat_tokens + split_tokens).
  The stream's last piece, shorter than ``length``, is dropped.

  ``[[1,2,3],[4,5,6,7],[8]]`` with length 3 -> ``[1,2,3], [4,5,6]`` (``[7, 8]`` is dropped).
  Documents are joined ``group_size`` at a time first: the stream is the same, the per-document
  overhead is not.
  """
  groups = (dataset.map(lambda ex: tf.cast(ex[feature], tf.int32))
            .ragged_batch(group_size).map(_flat))
  return split_stream(groups, length, feature)


def tokenize_and_split(dataset, vocabulary, length, text_key="text", feature="targets",
                       group_size=256):
  """``{text_key: string}`` documents -> pieces of exactly ``length`` tokens, tokenizing
  ``group_size`` documents per call: ``tokenize`` then ``concat_and_split`` in one pass."""
  groups = dataset.map(lambda ex: ex[text_key]).batch(group_size).map(
      lambda texts: tf.cast(vocabulary.tf_encode(texts).flat_values, tf.int32))
  return split_stream(groups, length, feature)


def split_stream(groups, length, feature="targets"):
  """A dataset of token vectors (consecutive parts of one stream) -> ``{feature: [length]}``."""
  def step(leftover, tokens):
    stream = tf.concat([leftover, tokens], axis=0)
    n_full = tf.size(stream) // length
    pieces = tf.reshape(stream[:n_full * length], [n_full, length])
    return stream[n_full * length:], pieces

  pieces = groups.scan(tf.zeros([0], tf.int32), step)
  return pieces.unbatch().map(lambda p: {feature: p})


def _flat(batch):
  """A ragged (or, for equal lengths, dense) batch -> its tokens in order."""
  return batch.flat_values if isinstance(batch, tf.RaggedTensor) else tf.reshape(batch, [-1])
