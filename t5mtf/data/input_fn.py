"""From a task or mixture to fixed-shape batches for the model.

    get_mixture_or_task(name).get_dataset(...) -> [concat for decoder-only] -> pack | pad
        -> batch -> skip(start_step)

``start_step`` positions the stream: a run resumed at step s sees batch s next, exactly what an
uninterrupted run would have seen (every random choice upstream is seeded per example).
"""
import tensorflow as tf

from t5mtf.data import packing
from t5mtf.data import registry


def to_decoder_only(dataset, targets_length):
  """``{inputs, targets}`` -> ``{targets: inputs+targets, prefix_mask: 1 on inputs}`` for the
  LM and prefix-LM architectures (§3.2.1), trimmed to ``targets_length``.

  ``{"inputs": [5, 6], "targets": [7, 1]} -> {"targets": [5, 6, 7, 1], "prefix_mask": [1, 1, 0, 0]}``
  """
  def fn(ex):
    inputs = ex.get("inputs", tf.zeros([0], tf.int32))
    targets = ex["targets"]
    n_in = tf.minimum(tf.size(inputs), targets_length - tf.minimum(tf.size(targets),
                                                                     targets_length))
    joined = tf.concat([inputs[:n_in], targets], 0)[:targets_length]
    prefix = tf.concat([tf.ones([n_in], tf.int32), tf.zeros_like(targets)], 0)[:targets_length]
    return {"targets": joined, "prefix_mask": prefix}
  return dataset.map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def model_lengths(sequence_length, decoder_only):
  if decoder_only:
    length = sequence_length.get("targets", 0) + sequence_length.get("inputs", 0)
    return {"targets": length, "prefix_mask": length}
  return dict(sequence_length)


def get_dataset(mixture_or_task_name, sequence_length, batch_size, split="train", seed=0,
                pack=True, shuffle=True, repeat=True, decoder_only=False, start_step=0,
                packing_strategy="greedy"):
  """Batches of ``{f, f_segment_ids, f_positions: int32 [batch_size, L_f]}``."""
  source = registry.get_mixture_or_task(mixture_or_task_name)
  ds = source.get_dataset(sequence_length, split=split, shuffle=shuffle, seed=seed,
                          num_epochs=None if repeat else 1)
  lengths = model_lengths(sequence_length, decoder_only)
  if decoder_only:
    ds = to_decoder_only(ds, lengths["targets"])
  else:
    ds = ds.map(lambda ex: {k: ex[k] for k in lengths}, num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
  ds = packing.pack(ds, lengths, packing_strategy) if pack else packing.pad(ds, lengths)
  if decoder_only:  # prefix_mask's own segment ids/positions duplicate the targets'.
    ds = ds.map(lambda r: {k: v for k, v in r.items() if not k.startswith("prefix_mask_")})
  ds = ds.batch(batch_size, drop_remainder=True)
  if start_step:
    ds = ds.skip(start_step)
  return ds.prefetch(tf.data.AUTOTUNE)
