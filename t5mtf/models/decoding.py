"""Incremental decoding with a key/value cache: greedy and beam search (§3.1.2: greedy for most
tasks; beam width 4 with length penalty alpha 0.6 for the final results, §3.7).

The encoder runs once; each decoder layer's encoder-decoder keys/values are projected once; each
step runs the decoder on one position, writing its self-attention keys/values into one slot of
a cache of ``decode_length`` slots (``write_slot``). Decoder-only models fill their cache with
one pass over the prefix. Beam search is mesh-tensorflow's (``mtf.beam_search``, GNMT length
penalty ((5+len)/6)^alpha); we supply the step function.
"""
import contextlib

import mesh_tensorflow as mtf
import numpy as np
import tensorflow.compat.v1 as tf
from tensorflow.python.ops import control_flow_util

from t5mtf.models import layers

EOS_ID = 1


class _Decoder:
  """Step function over a cache, for encoder-decoder models."""

  def __init__(self, model, inputs, inputs_segment_ids, decode_length, extra_dims=()):
    """inputs [batch, length] -> ready to step; extra_dims e.g. (beam,) broadcast the caches."""
    with model.variable_scope():
      self._build(model, inputs, inputs_segment_ids, decode_length, extra_dims)

  def _build(self, model, inputs, inputs_segment_ids, decode_length, extra_dims):
    self.model = model
    self.ctx = ctx = model.context(train=False)
    mesh = model.mesh
    enc = model.encode(ctx, inputs, inputs_segment_ids)  # [batch, length, d_model]
    enc_len = enc.shape.dims[-2]
    self.enc_memory_dim = mtf.Dimension("memory_length", enc_len.size)
    enc = mtf.rename_dimension(enc, enc_len.name, self.enc_memory_dim.name)
    enc_seg = mtf.rename_dimension(inputs_segment_ids, enc_len.name, self.enc_memory_dim.name)
    batch = inputs.shape.dims[0]
    self.batch_dims = [batch] + list(extra_dims)
    self.enc_bias = layers.mask_bias(mtf.not_equal(enc_seg, 0))  # [batch, enc_memory]
    self.memory = mtf.Dimension("decode_memory", decode_length)
    self.mem_pos = mtf.range(mesh, self.memory, tf.int32)
    # Keys [batch, memory, heads, d_kv] for layers.headwise_logits, values [batch, heads,
    # memory, d_kv]. No beam dimension: every beam's query is a row of one matmul that reads
    # them once.
    with tf.variable_scope("decoder"):
      self.enc_kv = [layers.project_kv(ctx, model.encdec_params(ctx, i), enc,
                                       keys_heads_last=True)
                     for i in range(model.config.num_decoder_layers)]
    self.tied_table = tied_logits_table(model, ctx)
    self.cache_shape = mtf.Shape(self.batch_dims + [ctx.heads, self.memory, ctx.d_kv])
    self.initial_states = [fresh_zeros(mesh, self.cache_shape, ctx.activation_dtype)
                           for _ in range(2 * model.config.num_decoder_layers)]

  def step(self, step, token, states):
    """step: int32 scalar; token [batch, (beam)] (the previous output; 0 at step 0) ->
    (logits [batch, (beam), vocab] float32, new states)."""
    with self.model.variable_scope():
      return self._step(step, token, states)

  def _step(self, step, token, states):
    model, ctx = self.model, self.ctx
    ctx.few_rows = True  # One position per row from here on (the encoder is built).
    new_states = list(states)
    # The position is a length-1 sequence: with a length dimension no operand of an attention
    # einsum holds all its dimensions, so mesh-tf lowers it to a batched matmul instead of a
    # broadcast multiply over the whole cache and a sum.
    one = mtf.Dimension("length", 1)
    kv_new_shape = mtf.Shape(self.batch_dims + [ctx.heads, ctx.d_kv])

    def self_kv(i, params, h):
      k_new, v_new = (mtf.reshape(t, kv_new_shape) for t in layers.project_kv(ctx, params, h))
      k, v = (write_slot(states[2 * i + j], t, step, self.memory, in_place=True)
              for j, t in enumerate((k_new, v_new)))
      new_states[2 * i], new_states[2 * i + 1] = k, v
      return k, v  # [batch, (beam), heads, decode_memory, d_kv]

    visible = layers.mask_bias(mtf.less_equal(self.mem_pos, step))  # [decode_memory]
    encdec = (lambda i, params: self.enc_kv[i], self.enc_bias, self.enc_memory_dim)
    with tf.variable_scope("decoder"):
      bias = visible + model.decoder_position_bias(ctx, step, self.mem_pos)
      x = model._stack_input(ctx, mtf.reshape(token, token.shape + [one]))
      for i in range(model.config.num_decoder_layers):  # x [batch, (beam), 1, d_model]
        x = model.decoder_layer(ctx, x, i, self_kv, bias, self.memory, encdec)
      x = model._final(ctx, x)
    logits = model.output_logits(ctx, x, self.tied_table)  # [batch, (beam), 1, vocab]
    return mtf.reshape(logits, token.shape + logits.shape.dims[-1:]), new_states


def tied_logits_table(model, ctx):
  """The tied embedding as [d_model, vocab] for the steps' logits (None if untied), transposed
  once before the loop: a step's logits read the [vocab, d_model] variable as x @ table^T,
  which TensorFlow's matmul runs well below the memory rate it reaches for x @ table (AMD
  EPYC, one core: 8 rows 8.9 vs 6.8 ms, one row 4.8 vs 2.9 ms), for a 14 ms transpose."""
  if not model.config.tie_embeddings:
    return None
  return mtf.transpose(model.embedding_table(ctx), [ctx.d_model, ctx.vocab])


def write_slot(cache, new, position, memory_dim, in_place=False):
  """cache [batch, .., memory, d_kv] with new [batch, .., d_kv] written at slot ``position`` of
  memory_dim (a scalar, or per row: [batch] or a prefix of cache's dimensions).

  One slot per row. ``in_place=True`` writes into the cache's own buffer (InplaceUpdate aliases
  its input), for the decoders' loop states only: a buffer that is the caller's alone
  (``fresh_zeros`` or a value computed in this run) and that nothing reads after the write.
  Otherwise a scatter copies the cache: TensorFlow never forwards a loop state's buffer to
  tensor_scatter_nd_update, and that copy of a whole cache per layer and step was 12% of a
  greedy step (T5-small, batch 8). Under XLA (TPU) the scatter is used either way: XLA updates
  in place itself. Same values: the slot held zeros, and 0 + x == x."""
  axis = cache.shape.dims.index(memory_dim)
  row_shape = cache.shape.dims[:axis] + cache.shape.dims[axis + 1:]
  if set(new.shape.dims) != set(row_shape):
    raise ValueError(f"write_slot: {new.shape} is not {cache.shape} without {memory_dim.name}")
  new = mtf.transpose(new, row_shape) if new.shape.dims != row_shape else new
  if position.shape.dims != cache.shape.dims[:position.shape.ndims]:
    raise ValueError(f"write_slot: position {position.shape} is not a prefix of {cache.shape}")

  def write(c, n, p):
    shape = c.shape.as_list()
    lead, slots, trail = shape[:axis], shape[axis], shape[axis + 1:]
    p = tf.broadcast_to(tf.reshape(p, p.shape.as_list() + [1] * (len(lead) - p.shape.ndims)),
                        lead)
    if in_place and not control_flow_util.GraphOrParentsInXlaContext(tf.get_default_graph()):
      rows, width = int(np.prod(lead)), int(np.prod(trail))
      index = tf.range(rows) * slots + tf.reshape(p, [rows])  # Row (lead..., p) of [-1, width].
      flat = tf.raw_ops.InplaceUpdate(x=tf.reshape(c, [rows * slots, width]), i=index,
                                      v=tf.reshape(n, [rows, width]))
      return tf.reshape(flat, shape)
    grid = tf.meshgrid(*[tf.range(size) for size in lead], indexing="ij")
    return tf.tensor_scatter_nd_update(c, tf.stack(grid + [p], axis=-1), n)
  return mtf.slicewise(write, [cache, new, position], output_shape=cache.shape,
                       output_dtype=cache.dtype, splittable_dims=new.shape.dims,
                       name="write_slot")


def fresh_zeros(mesh, shape, dtype):
  """Zeros in a new buffer every run, for a cache written in place: mtf.zeros may become one
  constant (even one shared by equal shapes) that an in-place write would change."""
  return mtf.slicewise(lambda z: tf.raw_ops.Empty(shape=tf.shape(z), dtype=dtype, init=True),
                       [mtf.zeros(mesh, shape, dtype)], output_shape=shape, output_dtype=dtype,
                       splittable_dims=shape.dims, name="fresh_zeros")


class _Ensemble:
  """Steps every member's decoder and averages their logits (§3.6 ensembles); one member is
  plain decoding."""

  def __init__(self, models, *args, decoder_class=None, **kwargs):
    models = list(models) if isinstance(models, (list, tuple)) else [models]
    self.decoders = [(decoder_class or _Decoder)(m, *args, **kwargs) for m in models]
    self.model, self.batch_dims = models[0], self.decoders[0].batch_dims
    self.initial_states = [s for d in self.decoders for s in d.initial_states]

  def step(self, step, token, states):
    logits, new_states, start = [], [], 0
    for d in self.decoders:
      n = len(d.initial_states)
      member_logits, member_states = d.step(step, token, states[start:start + n])
      logits.append(member_logits)
      new_states += member_states
      start += n
    if len(logits) == 1:
      return logits[0], new_states
    return mtf.add_n(logits) / float(len(logits)), new_states


def _previous_token(ids, step, length_dim):
  """ids [..., length] -> the token at step-1 (0 at step 0: T5's decoder start id)."""
  return mtf.gather(ids, step - 1, length_dim)


def greedy_decode(model, inputs, inputs_segment_ids, decode_length):
  """inputs [batch, length] -> outputs [batch, decode_length] (0 after EOS). ``model`` may be a
  list: an ensemble whose logits are averaged at each step."""
  decoder = _Ensemble(model, inputs, inputs_segment_ids, decode_length)
  mesh = decoder.model.mesh
  length_dim = mtf.Dimension("length", decode_length)
  ids0 = mtf.zeros(mesh, mtf.Shape(decoder.batch_dims + [length_dim]), tf.int32)
  done0 = mtf.cast(mtf.zeros(mesh, mtf.Shape(decoder.batch_dims), tf.int32), tf.bool)

  def cond_fn(step, ids, done, *states):
    return mtf.logical_and(mtf.less(step, decode_length),
                           mtf.logical_not(mtf.reduce_all(done)))

  def body_fn(step, ids, done, *states):
    logits, new_states = decoder.step(step, _previous_token(ids, step, length_dim), states)
    new_ids = mtf.argmax(logits, logits.shape.dims[-1])
    new_ids *= mtf.cast(mtf.logical_not(done), tf.int32)  # Nothing after EOS.
    ids += new_ids * mtf.one_hot(step, length_dim, dtype=tf.int32)
    done = mtf.logical_or(done, mtf.equal(new_ids, EOS_ID))
    return [step + 1, ids, done] + new_states

  step0 = mtf.constant(mesh, 0, dtype=tf.int32)
  outputs = mtf.while_loop(cond_fn, body_fn, [step0, ids0, done0] + decoder.initial_states)
  return outputs[1]


BEAM_SEARCHES = ("prefilter", "exhaustive")


def beam_search_decode(model, inputs, inputs_segment_ids, decode_length, beam_size=4,
                       alpha=0.6, search="prefilter", layout="", mesh_shape=""):
  """inputs [batch, length] -> best beam [batch, decode_length] (0 after EOS).

  ``search="prefilter"`` (default) is what the released code runs: mesh-tensorflow's beam
  search given the layout and mesh shape, which keeps the top 2 candidates per beam (and per
  vocabulary shard) before the global top-2k, a shortcut its docstring calls lossy; same
  outputs as the original on the same mesh. ``"exhaustive"`` ranks every beam x vocabulary
  candidate (never worse, sometimes a different beam)."""
  if search not in BEAM_SEARCHES:
    raise ValueError(f"beam search {search!r} is not one of {list(BEAM_SEARCHES)}")
  beam = mtf.Dimension("beam", beam_size)
  decoder = _Ensemble(model, inputs, inputs_segment_ids, decode_length, extra_dims=[beam])
  shortcut = {} if search == "exhaustive" else dict(
      _rows_as_slices(layout, mesh_shape, decoder.batch_dims[0]), num_prefilter=2)
  mesh = decoder.model.mesh
  length_dim = mtf.Dimension("length", decode_length)
  ids0 = mtf.zeros(mesh, mtf.Shape(decoder.batch_dims + [length_dim]), tf.int32)

  def logits_fn(step, ids, states):
    return decoder.step(step, _previous_token(ids, step, length_dim), states)

  with _beam_reorder_as_gather():
    beams, _ = mtf.beam_search.beam_search(
        logits_fn, ids0, alpha, states=decoder.initial_states, eos_id=EOS_ID, stop_early=True,
        use_tpu=True, dtype=tf.float32, **shortcut)
  best = mtf.gather(beams, mtf.constant(mesh, 0, dtype=tf.int32), beam)
  return zero_after_eos(best, length_dim)


_REORDER_DIMS = ("old_beam", "old_combined")  # What mtf.beam_search names the summed dimension.


@contextlib.contextmanager
def _beam_reorder_as_gather():
  """While mtf.beam_search builds its graph, its reordering of every cache by the chosen beams
  (an einsum of the cache with a one-hot [batch, old beam, new beam] selector: one 1.0 per new
  beam) is lowered as a gather of the cache's rows at the 1.0s. TensorFlow's einsum transposed
  the cache and the product around a matmul with an inner dimension of 4 beams: 1.2 ms per
  1 MB cache on AMD EPYC, 12 caches a step (bench/decode.py)."""
  module = mtf.beam_search.mtf  # mesh_tensorflow.ops_with_redefined_builtins, as beam_search uses.
  original = module.einsum

  def einsum(xs, output_shape=None, reduced_dims=None, name=None):
    if (len(xs) == 2 and output_shape is not None and reduced_dims is not None
        and len(reduced_dims) == 1 and reduced_dims[0].name in _REORDER_DIMS
        and xs[1].shape.ndims == 3 and reduced_dims[0] in xs[1].shape.dims):
      return _reorder(xs[0], xs[1], reduced_dims[0], mtf.convert_to_shape(output_shape))
    return original(xs, output_shape=output_shape, reduced_dims=reduced_dims, name=name)
  module.einsum = einsum
  try:
    yield
  finally:
    module.einsum = original


def _reorder(state, selector, old, output_shape):
  """einsum(state, selector) over ``old`` for a one-hot selector [S, old, new]: per slice, the
  state's rows [S, old, R] gathered at each new beam's 1.0 (a copy, the einsum's exact values)."""
  state_dims, sel_dims = state.shape.dims, selector.shape.dims
  shared = [d for d in sel_dims if d in state_dims and d != old]
  new = [d for d in sel_dims if d not in state_dims]
  rest = [d for d in state_dims if d not in shared + [old]]
  natural = shared + new + rest

  def gather(a, b):
    sizes = dict(zip(state_dims, a.shape.as_list()))
    sizes.update(zip(sel_dims, b.shape.as_list()))
    size = lambda dims: int(np.prod([sizes[d] for d in dims]))
    a = tf.transpose(a, [state_dims.index(d) for d in shared + [old] + rest])
    b = tf.transpose(b, [sel_dims.index(d) for d in shared + [old] + new])
    a = tf.reshape(a, [size(shared), sizes[old], size(rest)])
    b = tf.reshape(b, [size(shared), sizes[old], size(new)])
    y = tf.gather(a, tf.argmax(b, axis=1, output_type=tf.int32), batch_dims=1)  # [S, new, R]
    if sizes[old] != old.size:  # Beams split over the mesh: only the slice holding it gives it.
      y *= tf.reduce_max(b, axis=1)[:, :, None]
    y = tf.reshape(y, [sizes[d] for d in natural])
    return tf.transpose(y, [natural.index(d) for d in output_shape.dims])
  return layers.MatmulEinsum([state, selector], output_shape, gather,
                             name="beam_reorder").outputs[0]


def _rows_as_slices(layout, mesh_shape, batch):
  """The layout and mesh shape mtf.beam_search is given for its shortcuts: the user's, with
  every batch row declared its own mesh slice. The prefilter reads only the vocabulary's split
  (unchanged, so the same candidates as the released code). The reordering of the caches
  multiplies them by a one-hot [rows per slice x beam]^2 selector; with one row per slice that
  is a [beam, beam] selector per row, the same exact gather (one 1.0 per output) without the
  work that grows with the square of the batch (at batch 32, beam 4: 128 x 128 per cache)."""
  axis = "beam_search_rows"
  rules = [(d, a) for d, a in mtf.convert_to_layout_rules(layout or "")._pairs  # No public view.
           if d != batch.name]
  shape = mtf.convert_to_shape(mesh_shape or "")
  return dict(layout=mtf.LayoutRules(rules + [(batch.name, axis)]),
              mesh_shape=mtf.Shape(list(shape.dims) + [mtf.Dimension(axis, batch.size)]))


def zero_after_eos(ids, length_dim):
  """Keeps tokens up to and including the first EOS."""
  is_eos = mtf.cast(mtf.equal(ids, EOS_ID), tf.int32)
  seen_before = mtf.cumsum(is_eos, length_dim, exclusive=True)
  return ids * mtf.cast(mtf.equal(seen_before, 0), tf.int32)


class _DecoderOnly:
  """Step function over a cache, for LM / prefix-LM architectures (§3.2.1).

  One full pass over each row's prefix (its tokens up to the first padding) fills every layer's
  keys/values for the prefix positions: a prefix sees only itself (causal for an LM; fully
  visible for a prefix LM, with the position after it, whose input is the prefix's last token),
  so those never change. Each step then runs one position per row, the row's own next one
  (rows have prefixes of different lengths)."""

  def __init__(self, model, inputs, decode_length):
    self.model = model
    with model.variable_scope():
      self._build(model, inputs, decode_length)

  def _build(self, model, inputs, decode_length):
    self.ctx = ctx = model.context(train=False)
    batch, in_len = inputs.shape.dims
    self.batch_dims = [batch]
    self.total = total = mtf.Dimension("length", in_len.size + decode_length)
    self.memory = memory = mtf.Dimension("memory_length", total.size)
    self.mem_pos = mtf.range(model.mesh, memory, tf.int32)
    self.prefix_len = mtf.reduce_sum(mtf.cast(mtf.not_equal(inputs, 0), tf.int32),
                                     reduced_dim=in_len)  # [batch]
    ids = mtf.pad(inputs, [0, decode_length], in_len.name)  # [batch, total]
    pos = mtf.range(model.mesh, total, tf.int32)
    in_prefix = mtf.cast(mtf.less(pos, self.prefix_len), tf.int32)  # [total, batch]
    in_prefix = mtf.transpose(mtf.broadcast(in_prefix, [total, batch]), [batch, total])
    prefix = in_prefix if model.config.architecture == "prefix_lm" else None
    from t5mtf.models import transformer
    # The pass runs one position past the prefix as part of it (its input the prefix's last
    # token): a prefix LM's prefix sees that position (decoder_self_bias). Its keys/values are
    # not kept; the first step recomputes it, the same values.
    seg = transformer.prefix_and_next(in_prefix)
    ids_in = transformer.shift_right(ids, seg)
    keep = mtf.cast(mtf.rename_dimension(in_prefix, total.name, memory.name),
                    ctx.activation_dtype)  # Slots after the prefix start empty.
    self.initial_states = []

    def prefix_kv(i, params, h):
      k, v = layers.project_kv(ctx, params, mtf.rename_dimension(h, total.name, memory.name))
      self.initial_states += [k * keep, v * keep]
      return k, v
    bias, q_pos, m_pos = model.decoder_self_bias(ctx, seg, prefix)
    with tf.variable_scope("decoder"):
      bias += model.decoder_position_bias(ctx, q_pos, m_pos)
      x = model._stack_input(ctx, ids_in)
      for i in range(model.config.num_decoder_layers):
        x = model.decoder_layer(ctx, x, i, prefix_kv, bias, memory)
    self.tied_table = tied_logits_table(model, ctx)

  def step(self, step, token, states):
    """step: int32 scalar; token [batch] (each row's token before its position) ->
    (logits [batch, vocab], new states)."""
    with self.model.variable_scope():
      return self._step(step, token, states)

  def _step(self, step, token, states):
    model, ctx = self.model, self.ctx
    ctx.few_rows = True  # One position per row from here on (the prefix pass is built).
    where = self.prefix_len + step  # [batch]: each row's position.
    new_states = list(states)

    def self_kv(i, params, h):
      k_new, v_new = layers.project_kv(ctx, params, h)  # [batch, heads, d_kv]
      for j, t in enumerate((k_new, v_new)):
        new_states[2 * i + j] = write_slot(states[2 * i + j], t, where, self.memory,
                                           in_place=True)
      return new_states[2 * i], new_states[2 * i + 1]
    with tf.variable_scope("decoder"):
      bias = layers.mask_bias(mtf.less_equal(self.mem_pos, where))
      bias += model.decoder_position_bias(ctx, where, self.mem_pos)
      x = model._stack_input(ctx, token)  # [batch, d_model]
      for i in range(model.config.num_decoder_layers):
        x = model.decoder_layer(ctx, x, i, self_kv, bias, self.memory)
      x = model._final(ctx, x)
    return model.output_logits(ctx, x, self.tied_table), new_states


def greedy_decode_decoder_only(model, inputs, decode_length):
  """LM / prefix-LM architectures: continue each row of ``inputs`` [batch, length] (its tokens
  up to the first padding, EOS included, are the prefix) by greedy decoding, with a key/value
  cache (``_DecoderOnly``). ``model`` may be a list (an ensemble: logits averaged).
  Returns [batch, decode_length], 0 after EOS."""
  decoder = _Ensemble(model, inputs, decode_length, decoder_class=_DecoderOnly)
  first = decoder.decoders[0]
  mesh, total, batch = first.model.mesh, first.total, first.batch_dims[0]
  out_dim = mtf.Dimension("decode_length", decode_length)
  ids0 = mtf.pad(inputs, [0, decode_length], inputs.shape.dims[-1].name)  # [batch, total]
  done0 = mtf.cast(mtf.zeros(mesh, mtf.Shape([batch]), tf.int32), tf.bool)

  def cond_fn(step, ids, done, *states):
    return mtf.logical_and(mtf.less(step, decode_length), mtf.logical_not(mtf.reduce_all(done)))

  def body_fn(step, ids, done, *states):
    where = first.prefix_len + step
    previous = mtf.einsum([ids, mtf.one_hot(where - 1, total, dtype=tf.int32)],
                          reduced_dims=[total])  # [batch] (0 for an empty prefix)
    logits, new_states = decoder.step(step, previous, list(states))
    new = mtf.argmax(logits, logits.shape.dims[-1]) * mtf.cast(mtf.logical_not(done), tf.int32)
    ids += new * mtf.one_hot(where, total, dtype=tf.int32)
    return [step + 1, ids, mtf.logical_or(done, mtf.equal(new, EOS_ID))] + new_states

  step0 = mtf.constant(mesh, 0, dtype=tf.int32)
  outputs = mtf.while_loop(cond_fn, body_fn, [step0, ids0, done0] + decoder.initial_states)
  where = mtf.one_hot(first.prefix_len + mtf.range(mesh, out_dim, tf.int32), total,
                      dtype=tf.int32)
  return mtf.einsum([outputs[1], where], reduced_dims=[total])  # [batch, decode_length]
