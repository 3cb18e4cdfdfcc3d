"""Packing and padding to fixed lengths, with segment ids and positions (§3.1.2: "we pack
multiple sequences into each entry of the batch").

Packed rows carry, for every feature ``f``: ``f`` (tokens, 0-padded), ``f_segment_ids`` (1, 2, ...
per example, 0 on padding) and ``f_positions`` (restarting at 0 for each example). The model uses
segment ids so that no token attends across examples.

Packing is next-fit in arrival order: an example goes into the current row if it fits in every
feature, otherwise the row is emitted and a new one starts. It keeps order (so a restarted
pipeline is exact) and needs one pass with O(1) state.
"""
import tensorflow as tf


def _placed(ids, offset, length, segment):
  n = tf.size(ids)
  pad = [[offset, length - offset - n]]
  return (tf.pad(ids, pad),
          tf.pad(tf.fill([n], segment), pad),
          tf.pad(tf.range(n), pad))


def pack(dataset, sequence_length):
  """dataset of ``{f: int32 [<= L_f]}`` -> dataset of packed rows ``{f, f_segment_ids,
  f_positions: int32 [L_f]}``. Every token is kept; examples must already be trimmed."""
  keys = sorted(sequence_length)
  lengths = {k: int(sequence_length[k]) for k in keys}

  def empty_state():
    row = {}
    for k in keys:
      for suffix in ("", "_segment_ids", "_positions"):
        row[k + suffix] = tf.zeros([lengths[k]], tf.int32)
    return row, {k: tf.constant(0) for k in keys}, tf.constant(0)

  def add(row, used, nseg, ex):
    row = dict(row)
    for k in keys:
      ids, seg, pos = _placed(tf.cast(ex[k], tf.int32), used[k], lengths[k], nseg + 1)
      row[k] += ids
      row[k + "_segment_ids"] += seg
      row[k + "_positions"] += pos
    return row, {k: used[k] + tf.size(ex[k]) for k in keys}, nseg + 1

  def step(state, item):
    ex, is_flush = item
    row, used, nseg = state
    fits = tf.reduce_all([used[k] + tf.size(ex[k]) <= lengths[k] for k in keys])
    emit = tf.logical_or(is_flush, tf.logical_not(fits))
    emit = tf.logical_and(emit, nseg > 0)

    def start_new():
      r, u, n = empty_state()
      return add(r, u, n, ex)
    new_state = tf.cond(fits, lambda: add(row, used, nseg, ex), start_new)
    return new_state, (emit, row)

  items = dataset.map(lambda ex: ({k: tf.cast(ex[k], tf.int32) for k in keys}, False))
  flush = tf.data.Dataset.from_tensors(({k: tf.zeros([0], tf.int32) for k in keys}, True))
  ds = items.concatenate(flush).scan(empty_state(), step)
  return ds.filter(lambda emit, row: emit).map(lambda emit, row: row)


def pad(dataset, sequence_length):
  """One example per row, 0-padded to ``sequence_length``, with segment ids and positions."""
  keys = sorted(sequence_length)

  def fn(ex):
    row = {}
    for k in keys:
      ids = tf.cast(ex[k], tf.int32)[:sequence_length[k]]
      row[k], row[k + "_segment_ids"], row[k + "_positions"] = _placed(
          ids, 0, sequence_length[k], 1)
    return row
  return dataset.map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
