"""The T5 layers on mesh-tensorflow core ops (§2.1, §3.1.1).

Every tensor has named dimensions; shapes are in comments as ``[batch, length, d_model]``.
Variable names and shapes equal the released checkpoints' (e.g. ``SelfAttention/q`` is
[d_model, heads*d_kv]): a released checkpoint restores without conversion.

Initialisers are the released ones: normal with stddev fan_in^-0.5, and the attention's
1/sqrt(d_kv) folded into ``q``'s initialiser rather than applied in the forward pass.
"""
import math
import zlib

import mesh_tensorflow as mtf
import numpy as np
import tensorflow.compat.v1 as tf
from tensorflow.python.ops import control_flow_util

NEG_INF = -1e9


class Context:
  """What every layer needs: the mesh, config, dims and mode. Built once per model call."""

  def __init__(self, mesh, config, train, variable_dtype):
    self.mesh = mesh
    self.config = config
    self.train = train
    self.variable_dtype = variable_dtype
    self.few_rows = False  # Set for a decoding step: dense() lowers to tf.matmul.
    self.dropout_calls = 0  # Numbers dropout call sites for their stateless seeds.
    self.dropout_salt = None  # An mtf scalar (the microbatch number) folded into the seeds.
    self.ranges = {}  # mtf.range per dimension, read by dropout seeds (layers._keep_fn).
    self.activation_dtype = variable_dtype.activation_dtype
    c = config
    self.d_model = mtf.Dimension("d_model", c.d_model)
    self.d_ff = mtf.Dimension("d_ff", c.d_ff)
    self.heads = mtf.Dimension("heads", c.num_heads)
    self.heads_combined = mtf.Dimension("heads", c.num_heads * c.d_kv)  # Checkpoint layout.
    self.d_kv = mtf.Dimension("d_kv", c.d_kv)
    self.vocab = mtf.Dimension("vocab", c.vocab_size)
    self.buckets = mtf.Dimension("buckets", c.relative_attention_num_buckets)


def variable(ctx, name, shape, stddev):
  return mtf.get_variable(ctx.mesh, name, shape, dtype=ctx.variable_dtype,
                          initializer=tf.random_normal_initializer(stddev=stddev))


def _keep_fn(ctx, dims):
  """A new dropout call site for tensors with ``dims`` -> (``keep``, ``inputs``): ``inputs`` are
  mtf tensors to pass to the slicewise op beside the tensor, and ``keep(t, *their_slices)`` is
  bool, True where a unit of the tf tensor ``t`` is kept. It depends only on (global step, call
  site, microbatch, which part of the tensor the slice holds): a run resumed from a checkpoint
  draws exactly the masks an uninterrupted run would (mtf.dropout's stateful RNG restarts with
  the process), and a backward pass can ask for the same mask again.

  The part: ``inputs`` end with an mtf.range over each of ``dims``; on a mesh that splits one,
  each slice reads its own piece of the range, and its first value (the slice's offset along
  that dimension), if not 0, is folded into the seed with the dimension's name. Slices holding
  different parts of a tensor draw different masks; replicas of one part (a mesh axis the
  tensor is not split over) draw the same one, as they must. On one device every offset is 0
  and the seed is the plain (step, site, microbatch) one. Masks therefore depend on the layout,
  as mtf.dropout's do."""
  # One 16-bit draw per unit (two per Philox 32-bit output, half the random bits of a float
  # uniform), dropped below rate * 2^16: P(drop) is within 2^-17 of the rate (0.1 -> 0.100006).
  threshold = min(int(round(ctx.config.dropout_rate * 65536)), 65535)
  ctx.dropout_calls += 1
  call = ctx.dropout_calls
  step = tf.cast(tf.train.get_or_create_global_step(), tf.int32)
  salted = ctx.dropout_salt is not None
  dims = sorted(dims, key=lambda d: d.name)  # The seed does not depend on the tensor's order.
  inputs = _salt(ctx) + [_range(ctx, d) for d in dims]
  ids = [zlib.crc32(d.name.encode()) & 0x7fffffff for d in dims]

  def keep(t, *slices):
    salt = tf.cast(slices[0], tf.int32) if salted else 0
    seed = tf.stack([step, call + 65536 * salt])
    for dim_id, r in zip(ids, slices[int(salted):]):
      # Folds in (dimension, offset) where the offset is not 0: the seed then depends only on
      # the part of the tensor the slice holds, not on dimensions no mesh splits.
      folded = tf.stack([_draw_int(seed), dim_id])
      folded = tf.stack([_draw_int(folded), r[0]])
      seed = tf.where(tf.equal(r[0], 0), seed, folded)
    n = t.shape.num_elements()
    if n is None:
      n = tf.size(t)
    bits = tf.random.stateless_uniform([(n + 1) // 2], seed, minval=None, maxval=None,
                                       dtype=tf.uint32)
    draws = tf.reshape(tf.bitcast(bits, tf.uint16), [-1])
    if not isinstance(n, int) or n % 2:
      draws = draws[:n]
    return tf.reshape(draws, tf.shape(t)) >= tf.constant(threshold, tf.uint16)
  return keep, inputs


def _draw_int(seed):
  return tf.random.stateless_uniform([], seed, minval=None, maxval=None, dtype=tf.int32)


def _range(ctx, dim):
  """mtf.range over dim, one per model call and dimension."""
  if dim not in ctx.ranges:
    ctx.ranges[dim] = mtf.range(ctx.mesh, dim, tf.int32)
  return ctx.ranges[dim]


def _keep_mask_fn(ctx, dims):
  """As _keep_fn, the mask as 1/(1-rate) where kept, 0 where dropped (t's dtype)."""
  (keep, inputs), rate = _keep_fn(ctx, dims), ctx.config.dropout_rate
  return (lambda t, *slices: (tf.cast(keep(t, *slices), t.dtype) *
                              tf.cast(1.0 / (1.0 - rate), t.dtype))), inputs


def _salt(ctx):
  return [] if ctx.dropout_salt is None else [ctx.dropout_salt]


def dropout(ctx, x):
  """Inverted dropout at ``ctx.config.dropout_rate`` when training, with a stateless mask."""
  if not ctx.train or ctx.config.dropout_rate <= 0:
    return x
  scaled_keep_mask, inputs = _keep_mask_fn(ctx, x.shape.dims)
  # The mask reads x only for its shape, through stop_gradient: x may be a lazily all-reduced
  # sum, which mtf 0.1.21 cannot differentiate through a slicewise op on SimdMeshImpl (TPU).
  mask = mtf.slicewise(scaled_keep_mask, [mtf.stop_gradient(x)] + inputs,
                       output_shape=x.shape, output_dtype=x.dtype,
                       splittable_dims=x.shape.dims, name="dropout_mask")
  return x * mask


def dense(ctx, x, w, reduced_dims, output_shape=None):
  """mtf.einsum([x, w]) summing over reduced_dims; output_shape defaults to mtf's order (x's
  other dimensions, then w's). Dimensions x and w share besides those are batch dimensions.

  In a decoding step (``ctx.few_rows``: one position per row) it is one tf.matmul (batched
  over the shared dimensions). For a few rows TensorFlow's oneDNN einsum costs 5x a matmul per
  call ([1, 512] x [512, 512]: 0.088 vs 0.017 ms) and a step makes ~75 of them. Training and
  the encoder keep mtf.einsum."""
  shared = [d for d in x.shape.dims if d in w.shape.dims and d not in reduced_dims]
  rows = [d for d in x.shape.dims if d not in shared + reduced_dims]
  outs = [d for d in w.shape.dims if d not in shared + reduced_dims]
  if output_shape is None:
    output_shape = [d for d in x.shape.dims if d not in reduced_dims] + outs
  output_shape = mtf.Shape(output_shape)
  natural = shared + rows + outs
  if not ctx.few_rows or set(output_shape.dims) != set(natural):
    return mtf.einsum([x, w], output_shape=output_shape)

  def matmul(a, b):
    sizes = dict(zip(x.shape.dims, a.shape.as_list()))  # Slice sizes: a mesh may split dims.
    sizes.update(zip(w.shape.dims, b.shape.as_list()))
    a, transpose_a = _arrange(a, x.shape.dims, shared, rows, reduced_dims)
    b, transpose_b = _arrange(b, w.shape.dims, shared, reduced_dims, outs)
    size = lambda dims: int(np.prod([sizes[d] for d in dims]))
    batch = [sizes[d] for d in shared]
    a = tf.reshape(a, batch + ([size(reduced_dims), size(rows)] if transpose_a else
                               [size(rows), size(reduced_dims)]))
    b = tf.reshape(b, batch + ([size(outs), size(reduced_dims)] if transpose_b else
                               [size(reduced_dims), size(outs)]))
    if transpose_b and size(rows) > 1:
      # w stored [outs, reduced] (beam search's encoder keys; measured on the tied embedding,
      # which decoding now passes transposed: decoding.tied_logits_table): Eigen's kernel for
      # x @ w^T is slow for a few rows (AMD EPYC, [4, 512] x [32128, 512]^T: 49 ms, w @ x^T
      # then transposed: 7 ms; bench/decode.py). One row is a matrix-vector product either way.
      y = tf.linalg.matrix_transpose(tf.matmul(b, a, transpose_b=not transpose_a))
    else:
      y = tf.matmul(a, b, transpose_a=transpose_a, transpose_b=transpose_b)
    y = tf.reshape(y, [sizes[d] for d in natural])
    if output_shape.dims != natural:
      y = tf.transpose(y, [natural.index(d) for d in output_shape.dims])
    return y
  return MatmulEinsum([x, w], output_shape, matmul, name="dense").outputs[0]


class MatmulEinsum(mtf.EinsumOperation):
  """An mtf einsum whose per-slice product is ``slice_fn`` (a tf.matmul; for beam search's
  one-hot reorder, a gather: decoding._reorder). Split over a mesh
  like mtf's einsum, from whose lowering this differs only in that function: a summed
  dimension split over a mesh axis ends in mtf's lazy allreduce."""

  def __init__(self, inputs, output_shape, slice_fn, name=None):
    super().__init__(inputs, output_shape, name=name)
    self._slice_fn = slice_fn

  def lower(self, lowering):
    mesh_impl = lowering.mesh_impl(self)
    # mtf 0.1.21's own helpers (pinned): which mesh axes the product sums over.
    _, reduced_axes = mtf.ops._einsum_helper(  # pylint: disable=protected-access
        [x.shape for x in self.inputs], self.outputs[0].shape, mesh_impl)
    y = mesh_impl.slicewise(self._slice_fn, *[lowering.tensors[x] for x in self.inputs])
    if reduced_axes:
      y = mtf.ops.LazyAllreduceSum(mesh_impl, y, reduced_axes)
    lowering.set_tensor_lowering(self.outputs[0], y)


def _arrange(t, dims, batch, first, second):
  """t with dims -> (t as batch + first + second, False), or as batch + second + first and
  True when that is its order already (matmul transposes it for free)."""
  if dims == batch + second + first and first and second:
    return t, True
  order = batch + first + second
  if dims != order:
    t = tf.transpose(t, [dims.index(d) for d in order])
  return t, False


def _equation(*shapes):
  """mtf Shapes -> a tf.einsum equation, one letter per dimension ("ab,bc->ac")."""
  letters = {}
  subs = ["".join(letters.setdefault(d, chr(ord("a") + len(letters))) for d in shape.dims)
          for shape in shapes]
  return ",".join(subs[:-1]) + "->" + subs[-1]


# False: the functions made by elementwise() run as plain TensorFlow ops, as before they were
# compiled (bench/fusion.py and bench/profile.py --no_xla compare the two). Read when a graph
# is built.
XLA_ELEMENTWISE = True


def elementwise(fn):
  """fn (elementwise TF ops on equal-shaped tensors, maybe one reduction) compiled by XLA into
  a few loops instead of one pass over memory per op. Only for multiplies, selects, casts,
  compares and adds, whose results are IEEE-exact wherever they run (forward values stay
  bit-equal to TensorFlow's kernels), and for gradients, where a reduction's order may differ
  by float rounding. Not for exp or rsqrt: XLA's differ from TensorFlow's in the last bit.
  Inside an XLA computation already (a TPU's), fn is called as is: XLA fuses it there.

  Measured (AMD EPYC Zen 5, 2 threads): the attention backward's selects, multiplies and sum
  over [8, 8, 512, 512] took 61 ms as TensorFlow ops, 37 ms compiled."""
  compiled = tf.function(fn, jit_compile=True, autograph=False)

  def call(*args):
    if (not XLA_ELEMENTWISE or
        control_flow_util.GraphOrParentsInXlaContext(tf.get_default_graph())):
      # As plain ops, every op waits for every argument, as the compiled call does: TensorFlow
      # runs an op once its own inputs exist, so a backward op reading only forward values
      # (y * scale, 64 MiB per T5-small encoder layer) would otherwise run during the forward
      # pass and be held until its gradient arrived, every layer's at once at the peak.
      with tf.control_dependencies([a for a in args if isinstance(a, tf.Tensor)]):
        return fn(*args)
    return compiled(*args)
  return call


def _scale(rate, dtype):
  """Inverted dropout's 1 / (1 - rate) as a scalar of dtype (an argument of the compiled
  functions below, so that every layer shares one compilation per shape)."""
  return tf.cast(1.0 / (1.0 - rate), dtype)


@elementwise
def _times_scaled_mask(y, keep, scale):
  """dropout's y * mask, mask = cast(keep) * scale: the same two multiplies as mtf.dropout."""
  return y * (tf.cast(keep, y.dtype) * scale)


@elementwise
def _relu_times_scaled_mask(x, keep, scale):
  return tf.nn.relu(x) * (tf.cast(keep, x.dtype) * scale)


@elementwise
def _relu_dropout_grad(y, dy, scale):
  """dy * (y > 0) * scale: y > 0 exactly where the unit passed ReLU and was kept."""
  return dy * tf.cast(y > 0, dy.dtype) * scale


def _softmax_grad_ops(y, dp, axis):
  """Backward of softmax y along axis: y * (dp - sum(dp * y))."""
  return y * (dp - tf.reduce_sum(dp * y, axis, keepdims=True))


_softmax_grad = elementwise(_softmax_grad_ops)


@elementwise
def _dropped_softmax_grad(y, dp, keep, scale, axis):
  """Backward of dropout(softmax): (p, dlogits) from softmax y, dp = d(dropped weights) and
  the kept bools. p, the dropped weights again, is made here rather than kept from the forward
  pass (the bools are 1/4 of its size); dp' = dp * scale where kept, else 0;
  dlogits = y * (dp' - sum(dp' * y)).

  The row sum is taken as scale * sum(dp * y where kept), so that dp' feeds only the last
  multiply: XLA's CPU compiler turns a long row sum into a windowed reduction that cannot fuse
  what feeds it, and a dp' shared by both would be kept whole besides (two 64 MiB temporaries
  per T5-small encoder layer instead of one; alone, [8, 8, 512, 512] on 2 threads: 26.1 ->
  22.7 ms). The same value up to float rounding."""
  zero = tf.zeros([], y.dtype)  # Broadcast: no zeros tensor.
  p = tf.where_v2(keep, y * scale, zero)
  row_sum = tf.reduce_sum(tf.where_v2(keep, dp * y, zero), axis, keepdims=True) * scale
  return p, y * (tf.where_v2(keep, dp * scale, zero) - row_sum)


def attention_output(ctx, logits, v, memory_dim):
  """einsum(dropout(softmax(logits over memory_dim)), v) over memory_dim; when training, one op
  with its own gradient.

  logits [batch, heads, length, memory], v [batch, heads, memory, d_kv] -> [batch, heads,
  length, d_kv]. Composed of mtf ops, the backward pass keeps every intermediate: both exps of
  mtf.softmax, the float mask and the dropped weights p (at T5-small shapes 4 x 64 MB per
  encoder layer). This op keeps only the softmax y and the mask as bools (16 MB; TensorFlow
  merges the backward's request for the same stateless mask with the forward's) and makes p
  again in the backward pass (a select from the softmax and the bools): dv = p^T do;
  dp = do v^T, dp' = dp / (1 - rate) where kept, else 0; dlogits = y * (dp' - sum(dp' * y)).
  Forward values are mtf.softmax's, then dropout's, then mtf.einsum's: the same TF ops in the
  same order (tested bit-equal)."""
  out_shape = mtf.Shape([d for d in logits.shape.dims if d != memory_dim] +
                        [d for d in v.shape.dims if d not in logits.shape.dims])
  axis = logits.shape.dims.index(memory_dim)
  if not ctx.train:
    # tf.nn.softmax (exp(x - max) / sum) instead of mtf.softmax's exp(x - logsumexp(x)): one
    # exp pass, not two; the encoder's [8, 8, 512, 512] softmax took 28 instead of 71 ms (AMD
    # EPYC, one core). Same values up to rounding (5e-8 there); training keeps mtf's order.
    weights = mtf.slicewise(lambda x: tf.nn.softmax(x, axis), [logits],
                            output_shape=logits.shape, output_dtype=logits.dtype,
                            splittable_dims=[d for d in logits.shape.dims if d != memory_dim],
                            name="softmax")
    return dense(ctx, weights, v, [memory_dim], out_shape)
  rate = ctx.config.dropout_rate
  # v's own dimensions (d_kv) are summed over in dp = do v^T, so they stay whole on each slice.
  splittable = [d for d in logits.shape.dims if d != memory_dim]
  keep_fn, seeds = _keep_fn(ctx, splittable) if rate > 0 else (None, [])
  forward_eq = _equation(logits.shape, v.shape, out_shape)
  dv_eq = _equation(logits.shape, out_shape, v.shape)
  dp_eq = _equation(out_shape, v.shape, logits.shape)

  def dropped(y, *seeds_):
    if not keep_fn:
      return y
    return _times_scaled_mask(y, keep_fn(y, *seeds_), _scale(rate, y.dtype))

  def forward(x, v_, *seeds_):
    m = tf.reduce_max(x, axis, keepdims=True)
    y = tf.exp(x - (tf.math.log(tf.reduce_sum(tf.exp(x - m), axis, keepdims=True)) + m))
    return tf.einsum(forward_eq, dropped(y, *seeds_), v_), y

  def backward(y, v_, do, *seeds_):
    dp = tf.einsum(dp_eq, do, v_)
    if keep_fn:  # Only the bool mask is shared with the forward pass, not a float copy.
      p, dx = _dropped_softmax_grad(y, dp, keep_fn(y, *seeds_), _scale(rate, y.dtype), axis)
    else:
      p, dx = y, _softmax_grad(y, dp, axis)
    return dx, tf.einsum(dv_eq, p, do)

  def grad(op, do, unused_dy_softmax):
    dx, dv = mtf.slicewise(backward, [op.outputs[1], v, do] + seeds,
                           output_shape=[logits.shape, v.shape],
                           output_dtype=[logits.dtype, v.dtype], splittable_dims=splittable,
                           grad_function=0, name="attention_output_grad")
    return [dx, dv] + [None] * len(seeds)

  out, _ = mtf.slicewise(forward, [logits, v] + seeds, output_shape=[out_shape, logits.shape],
                         output_dtype=[v.dtype, logits.dtype], splittable_dims=splittable,
                         grad_function=grad, name="attention_output")
  return out


def relu_dropout(ctx, x):
  """dropout(relu(x)) when training, as one op whose gradient needs only its output y:
  dx = dy * (y > 0) / (1 - rate), since y > 0 exactly where x > 0 and the unit was kept. The
  composed ops keep x's ReLU and the float mask besides y (2 x 32 MB per T5-small encoder
  layer). Forward values are the composed ops' (tested bit-equal)."""
  rate = ctx.config.dropout_rate
  if not ctx.train or rate <= 0:
    return mtf.relu(x)
  keep_fn, seeds = _keep_fn(ctx, x.shape.dims)

  def forward(t, *seeds_):
    return _relu_times_scaled_mask(t, keep_fn(t, *seeds_), _scale(rate, t.dtype))

  def backward(y, dy):
    return _relu_dropout_grad(y, dy, _scale(rate, dy.dtype))

  def grad(op, dy):
    dx = mtf.slicewise(backward, [op.outputs[0], dy], output_shape=x.shape,
                       output_dtype=x.dtype, splittable_dims=x.shape.dims, grad_function=0,
                       name="relu_dropout_grad")
    return [dx] + [None] * len(seeds)

  return mtf.slicewise(forward, [x] + seeds,
                       output_shape=x.shape, output_dtype=x.dtype, splittable_dims=x.shape.dims,
                       grad_function=grad, name="relu_dropout")


def where_or_zero(condition, x):
  """x where condition (bool, x's shape) is true, else 0: mtf.where's values (x * 1 + 0 * 0,
  up to the sign of a zero), as one select whose gradient is a select too. mtf.where multiplies
  by the condition cast to float, and its gradient keeps that float copy for the backward pass
  (at the cross-entropy, a [batch, length, vocab] one: 112 MiB at T5-small's batch 8 x 114)."""
  def select(c, t):
    return tf.where_v2(c, t, tf.zeros([], t.dtype))

  def grad(op, dy):
    return [None, mtf.slicewise(select, [condition, dy], output_shape=x.shape,
                                output_dtype=x.dtype, splittable_dims=x.shape.dims,
                                name="where_or_zero_grad")]

  return mtf.slicewise(select, [condition, x], output_shape=x.shape, output_dtype=x.dtype,
                       splittable_dims=x.shape.dims, grad_function=grad, name="where_or_zero")


def layer_norm(ctx, x, name=None):
  """T5's layer norm: rescale only, no mean subtraction, no bias. x: [..., d_model]."""
  with tf.variable_scope(name or ctx.config.norm_name):
    scale = mtf.get_variable(ctx.mesh, "scale", [ctx.d_model], dtype=ctx.variable_dtype,
                             initializer=tf.ones_initializer())
  x32 = mtf.cast(x, tf.float32)
  # x * x, not mtf.square: the same values, but square's gradient, dy * x * 2, has a factor
  # (x * 2) that TensorFlow makes from x alone during the forward pass and holds until the
  # backward pass (8 MiB per T5-small encoder norm, all alive at the step's peak).
  variance = mtf.reduce_mean(x32 * x32, reduced_dim=ctx.d_model)
  normed = mtf.cast(x * mtf.cast(mtf.rsqrt(variance + ctx.config.layer_norm_epsilon),
                                 x.dtype), x.dtype)
  return normed * scale


# ------------------------------------------------------------------------------------------------
# Relative position bias (§2.1): 32 buckets, log-spaced up to distance 128, one scalar per
# head and bucket, shared by all layers of a stack.
# ------------------------------------------------------------------------------------------------


def relative_position_bucket(relative_position, bidirectional, num_buckets=32, max_distance=128):
  """tf int32 (memory_pos - query_pos) -> bucket in [0, num_buckets). Half of the buckets are
  exact small distances, the rest log-spaced up to ``max_distance``; bidirectional halves them
  again by sign."""
  n = -relative_position
  ret = 0
  if bidirectional:
    num_buckets //= 2
    ret += tf.cast(n < 0, tf.int32) * num_buckets
    n = tf.abs(n)
  else:
    n = tf.maximum(n, 0)
  max_exact = num_buckets // 2
  is_small = n < max_exact
  val_if_large = max_exact + tf.cast(
      tf.math.log(tf.cast(n, tf.float32) / max_exact + np.finfo(np.float32).eps)
      / math.log(max_distance / max_exact) * (num_buckets - max_exact), tf.int32)
  val_if_large = tf.minimum(val_if_large, num_buckets - 1)
  return ret + tf.where(is_small, n, val_if_large)


def relative_bias_table(ctx):
  """The stack's table, variable ``relative_attention_bias`` [heads, buckets]."""
  return variable(ctx, "relative_attention_bias", [ctx.heads, ctx.buckets],
                  stddev=ctx.config.d_model ** -0.5)


def relative_position_bias(ctx, table, query_pos, memory_pos, bidirectional):
  """query_pos [length] or scalar, memory_pos [memory_length] (int32 mtf) ->
  bias [heads, length, memory_length] (or [heads, memory_length] for a scalar query)."""
  relative = memory_pos - query_pos  # [length, memory_length]
  c = ctx.config
  buckets = mtf.slicewise(
      lambda r: relative_position_bucket(r, bidirectional, c.relative_attention_num_buckets,
                                         c.relative_attention_max_distance),
      [relative], output_shape=relative.shape, output_dtype=tf.int32,
      splittable_dims=relative.shape.dims, name="relative_position_bucket")
  one_hot = mtf.one_hot(buckets, ctx.buckets, dtype=table.dtype)  # [..., buckets]
  return mtf.cast(mtf.einsum([one_hot, table], reduced_dims=[ctx.buckets]), tf.float32)


# ------------------------------------------------------------------------------------------------
# Attention
# ------------------------------------------------------------------------------------------------


def attention_params(ctx, name):
  """q, k, v [d_model, heads, d_kv]; o [heads, d_kv, d_model] (stored combined)."""
  c = ctx.config
  with tf.variable_scope(name):
    stddevs = {"q": (c.d_model * c.d_kv) ** -0.5, "k": c.d_model ** -0.5,
               "v": c.d_model ** -0.5}
    params = {}
    for n, std in stddevs.items():
      w = variable(ctx, n, [ctx.d_model, ctx.heads_combined], std)
      params[n] = mtf.reshape(w, [ctx.d_model, ctx.heads, ctx.d_kv])
    o = variable(ctx, "o", [ctx.heads_combined, ctx.d_model], (c.num_heads * c.d_kv) ** -0.5)
    params["o"] = mtf.reshape(o, [ctx.heads, ctx.d_kv, ctx.d_model])
  return params


def project_kv(ctx, params, memory, keys_heads_last=False):
  """memory [batch, memory_length, d_model] -> k, v [batch, heads, memory_length, d_kv].

  Heads before positions, here and in ``attend``'s logits: the order of a batched matmul over
  (batch, heads), so that TensorFlow's einsum transposes none of the attention's big tensors.
  keys_heads_last: k as [batch, memory_length, heads, d_kv] instead, for ``headwise_logits``
  (a decode's encoder keys, projected once and read at every step)."""
  d_model, heads, d_kv = params["k"].shape.dims
  shape = mtf.Shape(memory.shape.dims[:-2] + [heads] + memory.shape.dims[-2:-1] + [d_kv])
  k_shape = mtf.Shape(memory.shape.dims[:-1] + [heads, d_kv]) if keys_heads_last else shape
  k = dense(ctx, memory, params["k"], [d_model], k_shape)
  v = dense(ctx, memory, params["v"], [d_model], shape)
  return k, v


def attend(ctx, params, x, k, v, bias, memory_dim):
  """x [batch, length, d_model]; k, v [batch, heads, memory_length, d_kv]; bias (or a list of
  terms added in turn) broadcastable to [batch, heads, length, memory_length]
  -> [batch, length, d_model]. (Incremental decoding: x may lack the length dimension, and
  dimensions of x that k lacks, e.g. beams over one encoder's keys, join the query rows.)"""
  q = dense(ctx, x, params["q"], [ctx.d_model])  # [batch, length, heads, d_kv]
  rows = [d for d in q.shape.dims if d not in (ctx.heads, ctx.d_kv)]
  logits_shape = ([d for d in rows if d in k.shape.dims] + [ctx.heads] +
                  [d for d in rows if d not in k.shape.dims] + [memory_dim])
  if ctx.few_rows and k.shape.dims[-2:] == [ctx.heads, ctx.d_kv]:  # project_kv(keys_heads_last)
    logits = headwise_logits(q, k, mtf.Shape(logits_shape))
  else:
    logits = dense(ctx, q, k, [ctx.d_kv], logits_shape)  # [batch, heads, length, memory]
  for term in bias if isinstance(bias, (list, tuple)) else [bias]:
    if term is not None:
      logits += mtf.cast(term, logits.dtype)
  o = attention_output(ctx, logits, v, memory_dim)  # [batch, heads, length, d_kv]
  return dense(ctx, o, params["o"], [ctx.heads, ctx.d_kv])


def headwise_logits(q, k, output_shape):
  """einsum(q, k) over d_kv for a decoding step: q [batch, (beam, length), heads, d_kv], k
  [batch, memory, heads, d_kv] -> output_shape (e.g. [batch, heads, (beam, length), memory]).

  One matmul per batch row: k as [memory, heads * d_kv] times q laid out block-diagonally as
  [heads * d_kv, heads * rows] (zero outside its own head's d_kv rows). The keys are read once
  by a product with heads x rows columns instead of by one matrix-vector product per head,
  which oneDNN runs at a third of the memory rate (Zen 4, 2 threads, batch 32, 512 keys: 4.7 ->
  2.9 ms per layer). The other heads' terms are exact zeros, so each logit is a sum of the
  same d_kv products, in an order the kernel picks: the batched matmul's bits at greedy
  T5-small shapes, float rounding apart at others (tests/test_model.py)."""
  heads, d_kv = k.shape.dims[-2:]
  memory = k.shape.dims[-3]
  shared = k.shape.dims[:-3]
  rows = [d for d in q.shape.dims if d not in shared + [heads, d_kv]]
  natural = shared + [memory, heads] + rows

  def matmul(a, b):
    sizes = dict(zip(q.shape.dims, a.shape.as_list()))  # Slice sizes: a mesh may split heads.
    sizes.update(zip(k.shape.dims, b.shape.as_list()))
    batch = [sizes[d] for d in shared]
    h, n, r = sizes[heads], sizes[d_kv], int(np.prod([sizes[d] for d in rows]))
    order = shared + [heads, d_kv] + rows
    a = tf.reshape(tf.transpose(a, [q.shape.dims.index(d) for d in order]), batch + [h, n, 1, r])
    a = a * tf.reshape(tf.eye(h, dtype=a.dtype), [h, 1, h, 1])  # [.., h, d_kv, h, rows]
    y = tf.matmul(tf.reshape(b, batch + [sizes[memory], h * n]),
                  tf.reshape(a, batch + [h * n, h * r]))  # [.., memory, heads * rows]
    y = tf.reshape(y, [sizes[d] for d in natural])
    return tf.transpose(y, [natural.index(d) for d in output_shape.dims])
  return MatmulEinsum([q, k], output_shape, matmul, name="headwise_logits").outputs[0]


def mask_bias(allowed, dtype=tf.float32):
  """bool mtf tensor -> 0 where allowed, -1e9 elsewhere."""
  return mtf.cast(mtf.logical_not(allowed), dtype) * NEG_INF


# ------------------------------------------------------------------------------------------------
# Feed-forward (and adapters, §3.5.1)
# ------------------------------------------------------------------------------------------------


def feed_forward(ctx, x):
  """[batch, length, d_model] -> [batch, length, d_model]. v1.0: dense(d_ff) -> ReLU -> dense;
  v1.1: gated GELU (wi_0, wi_1). No biases."""
  c = ctx.config
  with tf.variable_scope("DenseReluDense"):
    def dense_in(name):
      with tf.variable_scope(name):
        w = variable(ctx, "kernel", [ctx.d_model, ctx.d_ff], c.d_model ** -0.5)
      return dense(ctx, x, w, [ctx.d_model])  # [batch, length, d_ff]
    if c.ffn_activation == "gated-gelu":
      h = dropout(ctx, mtf.gelu(dense_in("wi_0")) * dense_in("wi_1"))
    else:
      h = relu_dropout(ctx, dense_in("wi"))
    with tf.variable_scope("wo"):
      wo = variable(ctx, "kernel", [ctx.d_ff, ctx.d_model], c.d_ff ** -0.5)
    return dense(ctx, h, wo, [ctx.d_ff])


def adapter(ctx, x):
  """Dense-ReLU-dense with inner dimension adapter_dim, added residually (§3.5.1)."""
  c = ctx.config
  d_adapter = mtf.Dimension("d_adapter", c.adapter_dim)
  with tf.variable_scope("adapter"):
    wi = variable(ctx, "wi", [ctx.d_model, d_adapter], c.d_model ** -0.5)
    wo = mtf.get_variable(ctx.mesh, "wo", [d_adapter, ctx.d_model], dtype=ctx.variable_dtype,
                          initializer=tf.zeros_initializer())  # Starts as the identity.
  h = mtf.relu(mtf.einsum([x, wi], reduced_dims=[ctx.d_model]))
  return x + mtf.einsum([h, wo], reduced_dims=[d_adapter])
