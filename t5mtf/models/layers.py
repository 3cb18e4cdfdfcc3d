"""The T5 layers on mesh-tensorflow core ops (§2.1, §3.1.1).

Every tensor has named dimensions; shapes are in comments as ``[batch, length, d_model]``.
Variable names and shapes equal the released checkpoints' (e.g. ``SelfAttention/q`` is
[d_model, heads*d_kv]): a released checkpoint restores without conversion.

Initialisers are the released ones: normal with stddev fan_in^-0.5, and the attention's
1/sqrt(d_kv) folded into ``q``'s initialiser rather than applied in the forward pass.
"""
import math

import mesh_tensorflow as mtf
import numpy as np
import tensorflow.compat.v1 as tf

NEG_INF = -1e9


class Context:
  """What every layer needs: the mesh, config, dims and mode. Built once per model call."""

  def __init__(self, mesh, config, train, variable_dtype):
    self.mesh = mesh
    self.config = config
    self.train = train
    self.variable_dtype = variable_dtype
    self.dropout_calls = 0  # Numbers dropout call sites for their stateless seeds.
    self.dropout_salt = None  # An mtf scalar (the microbatch number) folded into the seeds.
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


def dropout(ctx, x):
  """Dropout whose mask depends only on (global step, call site): a run resumed from a
  checkpoint draws exactly the masks an uninterrupted run would (mtf.dropout's stateful RNG
  restarts with the process)."""
  rate = ctx.config.dropout_rate
  if not ctx.train or rate <= 0:
    return x
  ctx.dropout_calls += 1
  call = ctx.dropout_calls
  step = tf.cast(tf.train.get_or_create_global_step(), tf.int32)

  def scaled_keep_mask(t, salt=0):  # 1/(1-rate) where kept, 0 where dropped.
    seed = tf.stack([step, call + 65536 * tf.cast(salt, tf.int32)])
    keep = tf.random.stateless_uniform(tf.shape(t), seed) >= rate
    return tf.cast(keep, t.dtype) * tf.cast(1.0 / (1.0 - rate), t.dtype)
  # The mask reads x only for its shape, through stop_gradient: x may be a lazily all-reduced
  # sum, which mtf 0.1.21 cannot differentiate through a slicewise op on SimdMeshImpl (TPU).
  inputs = [mtf.stop_gradient(x)] + ([] if ctx.dropout_salt is None else [ctx.dropout_salt])
  mask = mtf.slicewise(scaled_keep_mask, inputs, output_shape=x.shape, output_dtype=x.dtype,
                       splittable_dims=x.shape.dims, name="dropout_mask")
  return x * mask


def layer_norm(ctx, x, name=None):
  """T5's layer norm: rescale only, no mean subtraction, no bias. x: [..., d_model]."""
  with tf.variable_scope(name or ctx.config.norm_name):
    scale = mtf.get_variable(ctx.mesh, "scale", [ctx.d_model], dtype=ctx.variable_dtype,
                             initializer=tf.ones_initializer())
  variance = mtf.reduce_mean(mtf.square(mtf.cast(x, tf.float32)), reduced_dim=ctx.d_model)
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


def project_kv(params, memory):
  """memory [batch, memory_length, d_model] -> k, v [batch, memory_length, heads, d_kv]."""
  k = mtf.einsum([memory, params["k"]], reduced_dims=[memory.shape.dims[-1]])
  v = mtf.einsum([memory, params["v"]], reduced_dims=[memory.shape.dims[-1]])
  return k, v


def attend(ctx, params, x, k, v, bias, memory_dim):
  """x [batch, length, d_model]; k, v [batch, memory_length, heads, d_kv];
  bias broadcastable to [batch, heads, length, memory_length] -> [batch, length, d_model]."""
  q = mtf.einsum([x, params["q"]], reduced_dims=[ctx.d_model])  # [batch, length, heads, d_kv]
  logits = mtf.einsum([q, k], reduced_dims=[ctx.d_kv])  # [batch, length, heads, memory_length]
  if bias is not None:
    logits += mtf.cast(bias, logits.dtype)
  weights = mtf.softmax(logits, memory_dim)
  weights = dropout(ctx, weights)
  o = mtf.einsum([weights, v], reduced_dims=[memory_dim])  # [batch, length, heads, d_kv]
  return mtf.einsum([o, params["o"]], reduced_dims=[ctx.heads, ctx.d_kv])


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
      return mtf.einsum([x, w], reduced_dims=[ctx.d_model])  # [batch, length, d_ff]
    if c.ffn_activation == "gated-gelu":
      h = mtf.gelu(dense_in("wi_0")) * dense_in("wi_1")
    else:
      h = mtf.relu(dense_in("wi"))
    h = dropout(ctx, h)
    with tf.variable_scope("wo"):
      wo = variable(ctx, "kernel", [ctx.d_ff, ctx.d_model], c.d_ff ** -0.5)
    return mtf.einsum([h, wo], reduced_dims=[ctx.d_ff])


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
