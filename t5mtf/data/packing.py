"""Packing and padding to fixed lengths, with segment ids and positions (§3.1.2: "we pack
multiple sequences into each entry of the batch").

Packed rows carry, for every feature ``f``: ``f`` (tokens, 0-padded), ``f_segment_ids`` (1, 2, ...
per example, 0 on padding) and ``f_positions`` (restarting at 0 for each example). The model uses
segment ids so that no token attends across examples.

Packing is first-fit over ``num_open_rows`` open rows: an example goes into the first open row with
room in every feature; when none has room, the oldest row is emitted and a new one opened. It is a
single ``scan`` over the dataset, a deterministic function of the input order (so a restarted
pipeline is exact), and every token is kept.
"""
import tensorflow as tf


def _placed(ids, offset, length, segment):
  n = tf.size(ids)
  pad = [[offset, length - offset - n]]
  return (tf.pad(ids, pad),
          tf.pad(tf.fill([n], segment), pad),
          tf.pad(tf.range(n), pad))


def pack(dataset, sequence_length, num_open_rows=8):
  """dataset of ``{f: int32 [<= L_f]}`` -> dataset of packed rows ``{f, f_segment_ids,
  f_positions: int32 [L_f]}``. Examples must already be trimmed to ``sequence_length``."""
  keys = sorted(sequence_length)
  lengths = {k: int(sequence_length[k]) for k in keys}
  k_rows = num_open_rows
  suffixes = ("", "_segment_ids", "_positions")

  def empty_rows(n):
    rows = {k + s: tf.zeros([n, lengths[k]], tf.int32) for k in keys for s in suffixes}
    return rows, {k: tf.zeros([n], tf.int32) for k in keys}, tf.zeros([n], tf.int32)

  def step(state, item):
    ex, is_flush = item
    rows, used, nseg = state  # rows: [K, L]; used: [K] per feature; nseg: [K]
    sizes = {k: tf.size(ex[k]) for k in keys}
    fits = tf.reduce_all(tf.stack([used[k] + sizes[k] <= lengths[k] for k in keys]), axis=0)
    fits = tf.logical_and(fits, tf.logical_not(is_flush))
    shift = tf.logical_not(tf.reduce_any(fits))  # Emit the oldest row, open a new one.
    emit_row = {name: v[0] for name, v in rows.items()}
    emit = tf.logical_and(shift, nseg[0] > 0)

    def shifted(x):
      return tf.concat([x[1:], tf.zeros_like(x[:1])], axis=0)
    rows = {n: tf.where(shift, shifted(v), v) for n, v in rows.items()}
    used = {k: tf.where(shift, shifted(v), v) for k, v in used.items()}
    nseg = tf.where(shift, shifted(nseg), nseg)
    target = tf.where(shift, k_rows - 1, tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32))
    add = tf.logical_not(is_flush)
    one_hot = tf.cast(tf.logical_and(tf.equal(tf.range(k_rows), target), add), tf.int32)  # [K]
    segment = nseg[target] + 1
    for k in keys:
      placed = _placed(ex[k], used[k][target], lengths[k], segment)
      for s, p in zip(suffixes, placed):
        rows[k + s] += one_hot[:, None] * p[None, :]
      used[k] += one_hot * sizes[k]
    nseg += one_hot
    return (rows, used, nseg), (emit, emit_row)

  items = dataset.map(lambda ex: ({k: tf.cast(ex[k], tf.int32) for k in keys}, False))
  flush = tf.data.Dataset.from_tensors(({k: tf.zeros([0], tf.int32) for k in keys}, True))
  ds = items.concatenate(flush.repeat(k_rows)).scan(empty_rows(k_rows), step)
  return ds.filter(_is_emitted).map(_row)


def _is_emitted(emit, row):
  return emit


def _row(emit, row):
  return row


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
