"""The T5 model: encoder and decoder stacks, the Table 2 architectures, and the loss.

Read top to bottom: ``T5Model.loss`` embeds, runs the encoder (§2.1), the decoder, the tied output
softmax and the cross-entropy. Each layer is pre-norm: ``x + dropout(sublayer(norm(x)))``.

Architectures (§3.2, Table 2), chosen by ``ModelConfig.architecture``:
- ``encoder_decoder``: the baseline.
- ``encoder_decoder_shared``: the decoder reuses each encoder layer's self-attention and FFN.
- ``lm``: decoder only, causal attention over inputs+targets.
- ``prefix_lm``: decoder only, fully visible attention over the inputs part.
The "L/2 layers in each stack" variant is a size setting (num_*_layers).

Features (all int32, from ``t5mtf.data.packing``): ``inputs``, ``targets`` and their
``_segment_ids`` / ``_positions``: [batch, length]. Decoder-only models read ``targets`` =
inputs+targets and ``prefix_mask`` (1 on the inputs part).
"""
import mesh_tensorflow as mtf
import tensorflow.compat.v1 as tf

from t5mtf.models import layers


def variable_dtype(config):
  act = tf.bfloat16 if config.activation_dtype == "bfloat16" else tf.float32
  master = tf.bfloat16 if config.master_dtype == "bfloat16" else tf.float32
  return mtf.VariableDType(master_dtype=master, slice_dtype=tf.float32, activation_dtype=act)


class T5Model:
  """Builds the mtf graph. Construct once per graph; call ``loss`` / ``logits`` / decoding."""

  def __init__(self, config, mesh, einsum_gather=False, scope_prefix=""):
    """einsum_gather: embed by one-hot einsum (needed when vocab or batch is split over the
    mesh, so that mtf sums the table's gradient across processors); otherwise a plain gather,
    far cheaper on CPU. See ``layout.needs_einsum_gather``."""
    self.config = config
    self.mesh = mesh
    self.einsum_gather = einsum_gather
    self.scope_prefix = scope_prefix  # "member_0/" etc. in an ensemble; "" names as released.
    self.dropout_salt = None  # Set per microbatch (train.model_fn) so masks differ between them.

  def variable_scope(self):
    """Enter around calls into the model from outside it (its own scopes are relative)."""
    if not self.scope_prefix:
      return tf.variable_scope(tf.get_variable_scope())
    return tf.variable_scope(absolute_scope(self.scope_prefix.rstrip("/")))

  def context(self, train):
    ctx = layers.Context(self.mesh, self.config, train, variable_dtype(self.config))
    ctx.dropout_salt = self.dropout_salt
    return ctx

  # -- embedding and output ----------------------------------------------------------------
  def embedding_table(self, ctx):
    with tf.variable_scope(absolute_scope(self.scope_prefix + "shared")):
      return layers.variable(ctx, "embedding", [ctx.vocab, ctx.d_model], stddev=1.0)

  def embed(self, ctx, ids):
    """ids [batch, length] -> [batch, length, d_model]."""
    table = self.embedding_table(ctx)
    if self.einsum_gather:
      return mtf.gather(table, ids, ctx.vocab)
    # Gather from the read value: tf.gather on the variable itself (ResourceGather) switches it
    # to copy-on-read, after which every dense read (the logits) copies the whole table.
    return mtf.slicewise(lambda t, i: tf.gather(tf.convert_to_tensor(t), i), [table, ids],
                         output_shape=ids.shape + [ctx.d_model], output_dtype=table.dtype,
                         splittable_dims=ids.shape.dims + [ctx.d_model], name="embed")

  def output_logits(self, ctx, x, tied_table=None):
    """x [batch, length, d_model] (after the final norm) -> [batch, length, vocab] float32.
    tied_table: the embedding table in any dimension order (decoding passes it as [d_model,
    vocab], transposed once before its loop)."""
    if self.config.tie_embeddings:
      x *= self.config.d_model ** -0.5  # Tied: rescale before the shared embedding (released).
      w = self.embedding_table(ctx) if tied_table is None else tied_table
    else:
      with tf.variable_scope(absolute_scope(self.scope_prefix + "decoder/logits")):
        w = layers.variable(ctx, "kernel", [ctx.d_model, ctx.vocab], ctx.config.d_model ** -0.5)
    return mtf.cast(layers.dense(ctx, x, w, [ctx.d_model]), tf.float32)

  # -- stacks ----------------------------------------------------------------------------------
  def _stack_input(self, ctx, ids):
    return layers.dropout(ctx, self.embed(ctx, ids))

  def _final(self, ctx, x):
    name = "final_layer_norm" if self.config.norm_name == "layer_norm" else "rms_norm"
    return layers.dropout(ctx, layers.layer_norm(ctx, x, name))

  def _sublayer(self, ctx, x, scope, fn):
    """Pre-norm residual block: x + dropout(fn(norm(x)))."""
    with tf.variable_scope(scope):
      y = fn(layers.layer_norm(ctx, x))
    return x + layers.dropout(ctx, y)

  def _ffn(self, ctx, x):
    y = layers.feed_forward(ctx, x)
    return layers.adapter(ctx, y) if self.config.adapter_dim else y

  def encode(self, ctx, ids, segment_ids):
    """ids, segment_ids [batch, length] -> [batch, length, d_model]."""
    length = ids.shape.dims[-1]
    memory = mtf.Dimension("memory_length", length.size)
    pos = mtf.range(self.mesh, length, tf.int32)
    mem_pos = mtf.range(self.mesh, memory, tf.int32)
    mem_seg = mtf.rename_dimension(segment_ids, length.name, memory.name)
    bias = layers.mask_bias(mtf.logical_and(mtf.equal(segment_ids, mem_seg),
                                            mtf.not_equal(mem_seg, 0)))
    with tf.variable_scope("encoder"):
      with tf.variable_scope("block_000/layer_000/SelfAttention"):
        table = layers.relative_bias_table(ctx)
      # Mask and position bias stay two terms (layers.attend): the gradient each layer sends
      # to the shared position bias is then [heads, length, memory] rather than per example.
      bias = [bias, layers.relative_position_bias(ctx, table, pos, mem_pos, bidirectional=True)]
      x = self._stack_input(ctx, ids)
      for i in range(self.config.num_encoder_layers):
        x = self._encoder_layer(ctx, x, bias, f"block_{i:03d}", length, memory)
      return self._final(ctx, x)

  def _encoder_layer(self, ctx, x, bias, block, length, memory):
    def self_attention(h):
      params = layers.attention_params(ctx, "SelfAttention")
      k, v = layers.project_kv(ctx, params, mtf.rename_dimension(h, length.name, memory.name))
      return layers.attend(ctx, params, h, k, v, bias, memory)
    with tf.variable_scope(block):
      x = self._sublayer(ctx, x, "layer_000", self_attention)
      return self._sublayer(ctx, x, "layer_001", lambda h: self._ffn(ctx, h))

  def decoder_self_bias(self, ctx, segment_ids, prefix_mask=None):
    """[batch, length] -> mask+position bias [batch, heads, length, memory_length] (causal;
    for prefix LMs fully visible inside the prefix and one position past it, where the prefix's
    last token is read and the first target predicted: as released, mesh-tensorflow's
    Unitransformer with input_full_attention)."""
    length = segment_ids.shape.dims[-1]
    memory = mtf.Dimension("memory_length", length.size)
    pos = mtf.range(self.mesh, length, tf.int32)
    mem_pos = mtf.range(self.mesh, memory, tf.int32)
    mem_seg = mtf.rename_dimension(segment_ids, length.name, memory.name)
    visible = mtf.less_equal(mem_pos, pos)
    if prefix_mask is not None:
      full = mtf.cast(prefix_and_next(prefix_mask), tf.bool)
      mem_full = mtf.rename_dimension(full, length.name, memory.name)
      visible = mtf.logical_or(visible, mtf.logical_and(full, mem_full))
    allowed = mtf.logical_and(visible, mtf.equal(segment_ids, mem_seg))
    return layers.mask_bias(allowed), pos, mem_pos

  def decode(self, ctx, targets_in, segment_ids, encoder_output=None, encoder_segment_ids=None,
             prefix_mask=None):
    """Teacher-forced decoder: targets_in [batch, length] -> [batch, length, d_model]."""
    length = targets_in.shape.dims[-1]
    memory = mtf.Dimension("memory_length", length.size)
    bias, pos, mem_pos = self.decoder_self_bias(ctx, segment_ids, prefix_mask)
    encdec = None
    if encoder_output is not None:
      enc_len = encoder_output.shape.dims[-2]
      enc_memory = mtf.rename_dimension(encoder_output, enc_len.name, "memory_length")
      enc_seg = mtf.rename_dimension(encoder_segment_ids, enc_len.name, "memory_length")
      encdec = (lambda i, params: layers.project_kv(ctx, params, enc_memory),
                layers.mask_bias(mtf.equal(segment_ids, enc_seg)), enc_memory.shape.dims[-2])

    def self_kv(i, params, h):
      return layers.project_kv(ctx, params, mtf.rename_dimension(h, length.name, memory.name))
    with tf.variable_scope("decoder"):
      bias = [bias, self.decoder_position_bias(ctx, pos, mem_pos)]  # As in encode().
      x = self._stack_input(ctx, targets_in)
      for i in range(self.config.num_decoder_layers):
        x = self.decoder_layer(ctx, x, i, self_kv, bias, memory, encdec)
      return self._final(ctx, x)

  def decoder_position_bias(self, ctx, query_pos, memory_pos):
    """Call inside the decoder scope: [heads, (length,) memory_length]."""
    with tf.variable_scope("block_000/layer_000/SelfAttention"):
      table = layers.relative_bias_table(ctx)
    return layers.relative_position_bias(
        ctx, table, query_pos, memory_pos, bidirectional=self.config.architecture == "prefix_lm")

  def decoder_layer(self, ctx, x, i, self_kv_fn, self_bias, memory, encdec=None):
    """One decoder block (call inside the "decoder" scope).

    self_kv_fn(i, params, h) -> (k, v) and encdec = (kv_fn(i, params), bias, memory_dim) let
    incremental decoding supply cached keys and values.
    """
    shared = self.config.architecture == "encoder_decoder_shared"
    own = f"block_{i:03d}"
    reuse = absolute_scope(f"{self.scope_prefix}encoder/block_{i:03d}") if shared else own

    def self_attention(h):
      params = layers.attention_params(ctx, "SelfAttention")
      k, v = self_kv_fn(i, params, h)
      return layers.attend(ctx, params, h, k, v, self_bias, memory)

    with tf.variable_scope(reuse):  # Shared: the encoder's variables (§3.2.2).
      x = self._sublayer(ctx, x, "layer_000", self_attention)
    if encdec is not None:
      kv_fn, enc_bias, enc_memory_dim = encdec

      def encdec_attention(h):
        params = layers.attention_params(ctx, "EncDecAttention")
        k, v = kv_fn(i, params)
        return layers.attend(ctx, params, h, k, v, enc_bias, enc_memory_dim)
      with tf.variable_scope(own):
        x = self._sublayer(ctx, x, "layer_001", encdec_attention)
    ffn_layer = "layer_001" if shared or encdec is None else "layer_002"
    with tf.variable_scope(reuse):
      return self._sublayer(ctx, x, ffn_layer, lambda h: self._ffn(ctx, h))

  def encdec_params(self, ctx, i):
    """The EncDecAttention params of decoder block i (call inside the "decoder" scope)."""
    with tf.variable_scope(f"block_{i:03d}/layer_001"):
      return layers.attention_params(ctx, "EncDecAttention")

  # -- whole model -----------------------------------------------------------------------------
  def logits(self, features, train=False):
    """features (mtf int32 [batch, length] tensors) -> logits [batch, length, vocab]."""
    ctx = self.context(train)
    targets = features["targets"]
    seg = features["targets_segment_ids"]
    targets_in = shift_right(targets, seg)
    if self.config.is_decoder_only:
      prefix = features.get("prefix_mask") if self.config.architecture == "prefix_lm" else None
      x = self.decode(ctx, targets_in, seg, prefix_mask=prefix)
    else:
      enc = self.encode(ctx, features["inputs"], features["inputs_segment_ids"])
      x = self.decode(ctx, targets_in, seg, enc, features["inputs_segment_ids"])
    return self.output_logits(ctx, x)

  def loss(self, features, train=True, num_microbatches=1):
    """(scalar loss, per-token log-likelihood [batch, length]) over the non-padding targets
    (and, for decoder-only models, only the targets part).

    Training, as the released mesh_tensorflow.transformer: cross-entropy plus ``z_loss`` *
    log(Z)^2 per token, summed and divided by a constant, the number of target positions of the
    whole batch (batch x length x ``num_microbatches``, padding included; §3.1.2's settings
    were tuned with it), or with ``loss_normalization="tokens"`` by the batch's non-padding
    target tokens. Evaluation: the mean cross-entropy per target token, no z-loss.
    """
    logits = self.logits(features, train)
    vocab_dim = logits.shape.dims[-1]
    targets = features["targets"]
    z_loss = self.config.z_loss if train else 0.0
    xent, log_z = cross_entropy(logits, targets, vocab_dim)
    if z_loss:
      xent += z_loss * mtf.square(log_z)
    weights = loss_weights(features)
    xent = mtf.cast(xent, tf.float32)
    if train and self.config.loss_normalization == "positions":
      denominator = float(targets.shape.size * num_microbatches)
    else:
      denominator = mtf.maximum(mtf.reduce_sum(weights), 1.0)
    loss = mtf.reduce_sum(xent * weights) / denominator
    if z_loss:  # The per-token log-likelihood is the cross-entropy alone.
      xent = xent - z_loss * mtf.square(mtf.cast(log_z, tf.float32))
    return loss, mtf.negative(xent) * weights


def cross_entropy(logits, targets, vocab_dim):
  """(-log softmax(logits)[targets], log Z), [batch, length] each: the ops and values of
  mtf.layers.softmax_cross_entropy_with_logits with hard targets (which the released code
  calls), except that the target is picked by a select on a bool one-hot
  (``layers.where_or_zero``) rather than a multiply by a float one (the same sum: every other
  term is an exact 0). The multiply's gradient kept the float one-hot, [batch, length, vocab]
  (117 MB at T5-small's batch 8 x 114 targets), for the backward pass; the select keeps a bool
  one. (mtf.where, used here before, multiplies too.) log Z is returned so that the z-loss and the
  log-likelihood need no second logsumexp over the vocabulary."""
  log_z = mtf.reduce_logsumexp(logits, vocab_dim)
  log_softmax = logits - log_z
  is_target = mtf.one_hot(targets, vocab_dim, on_value=True, off_value=False, dtype=tf.bool)
  picked = layers.where_or_zero(is_target, log_softmax)
  return mtf.negative(mtf.reduce_sum(picked, reduced_dim=vocab_dim)), log_z


def ensemble_token_log_likelihood(models, features):
  """Scores under an ensemble (§3.6): the members' logits averaged, then the log-likelihood of
  each target token [batch, length] (0 on tokens the loss ignores)."""
  logits = []
  for m in models:
    with m.variable_scope():
      logits.append(m.logits(features, train=False))
  mean = mtf.add_n(logits) / float(len(logits))
  xent = mtf.layers.softmax_cross_entropy_with_logits(mean, features["targets"],
                                                      mean.shape.dims[-1])
  return mtf.negative(xent) * loss_weights(features)


def loss_weights(features):
  """1 on the target tokens the loss counts: not padding, not a decoder-only model's prefix."""
  weights = mtf.cast(mtf.not_equal(features["targets"], 0), tf.float32)
  if "prefix_mask" in features:
    weights *= mtf.cast(mtf.equal(features["prefix_mask"], 0), tf.float32)
  return weights


def absolute_scope(name):
  """A variable scope named ``name`` wherever it is entered (mtf names variables by scope)."""
  return tf.VariableScope(tf.AUTO_REUSE, name=name)


def prefix_and_next(prefix_mask):
  """int32 [..., length] 1 on a prefix -> 1 on the prefix and the position after it (a prefix
  LM's fully visible region, as released: where the prefix's last token is read)."""
  length = prefix_mask.shape.dims[-1]
  after = mtf.shift(prefix_mask, offset=1, dim=length, wrap=False)
  return mtf.cast(mtf.logical_or(mtf.cast(prefix_mask, tf.bool), mtf.cast(after, tf.bool)),
                  tf.int32)


def shift_right(targets, segment_ids):
  """Decoder inputs: targets shifted right by one inside each packed segment, 0 at starts."""
  length = targets.shape.dims[-1]
  shifted = mtf.shift(targets, offset=1, dim=length, wrap=False)
  same = mtf.equal(mtf.shift(segment_ids, offset=1, dim=length, wrap=False), segment_ids)
  return shifted * mtf.cast(same, targets.dtype)
