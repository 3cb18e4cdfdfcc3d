"""The model's variables by name and shape, from the config alone (no graph, no weights).

These are the released checkpoints' names (T5 v1.0; T5.1.1 with ``norm_name="rms_norm"``,
gated FFN and untied logits). Used to count parameters, to check a checkpoint before restoring
it, and by the converters.
"""


def _attention(prefix, c):
  hk = c.num_heads * c.d_kv
  return {f"{prefix}/q": [c.d_model, hk], f"{prefix}/k": [c.d_model, hk],
          f"{prefix}/v": [c.d_model, hk], f"{prefix}/o": [hk, c.d_model]}


def _ffn(prefix, c):
  ins = ["wi_0", "wi_1"] if c.ffn_activation == "gated-gelu" else ["wi"]
  out = {f"{prefix}/DenseReluDense/{n}/kernel": [c.d_model, c.d_ff] for n in ins}
  out[f"{prefix}/DenseReluDense/wo/kernel"] = [c.d_ff, c.d_model]
  if c.adapter_dim:
    out[f"{prefix}/adapter/wi"] = [c.d_model, c.adapter_dim]
    out[f"{prefix}/adapter/wo"] = [c.adapter_dim, c.d_model]
  return out


def _norm(prefix, c):
  return {f"{prefix}/{c.norm_name}/scale": [c.d_model]}


def _final_norm(stack, c):
  name = "final_layer_norm" if c.norm_name == "layer_norm" else "rms_norm"
  return {f"{stack}/{name}/scale": [c.d_model]}


def expected_shapes(c):
  """{variable name: shape} of a model with config ``c`` (ModelConfig)."""
  shapes = {"shared/embedding": [c.vocab_size, c.d_model]}
  if not c.tie_embeddings:
    shapes["decoder/logits/kernel"] = [c.d_model, c.vocab_size]
  bias = [c.num_heads, c.relative_attention_num_buckets]
  shared = c.architecture == "encoder_decoder_shared"
  if not c.is_decoder_only:
    shapes["encoder/block_000/layer_000/SelfAttention/relative_attention_bias"] = bias
    for i in range(c.num_encoder_layers):
      b = f"encoder/block_{i:03d}"
      shapes.update(_norm(f"{b}/layer_000", c))
      shapes.update(_attention(f"{b}/layer_000/SelfAttention", c))
      shapes.update(_norm(f"{b}/layer_001", c))
      shapes.update(_ffn(f"{b}/layer_001", c))
    shapes.update(_final_norm("encoder", c))
  shapes["decoder/block_000/layer_000/SelfAttention/relative_attention_bias"] = bias
  for i in range(c.num_decoder_layers):
    b = f"decoder/block_{i:03d}"
    if not shared:
      shapes.update(_norm(f"{b}/layer_000", c))
      shapes.update(_attention(f"{b}/layer_000/SelfAttention", c))
    if c.is_decoder_only:
      ffn_layer = "layer_001"
    else:
      shapes.update(_norm(f"{b}/layer_001", c))
      shapes.update(_attention(f"{b}/layer_001/EncDecAttention", c))
      ffn_layer = "layer_002"
    if not shared:
      shapes.update(_norm(f"{b}/{ffn_layer}", c))
      shapes.update(_ffn(f"{b}/{ffn_layer}", c))
  shapes.update(_final_norm("decoder", c))
  return shapes
