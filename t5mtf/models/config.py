"""The model's hyperparameters: one plain dataclass, set from gin (``gin/models/*.gin``).

Paper sizes (§3.7; v1.0 released checkpoints)::

           d_model  d_ff   heads d_kv layers  params
   small   512      2048   8     64   6+6     60,506,624
   base    768      3072   12    64   12+12   222,903,552
   large   1024     4096   16    64   24+24   737,668,096
   3B      1024     16384  32    128  24+24   2,851,598,336
   11B     1024     65536  128   128  24+24   11,307,321,344
"""
import dataclasses

import gin

ARCHITECTURES = ("encoder_decoder", "encoder_decoder_shared", "lm", "prefix_lm")
FFN_ACTIVATIONS = ("relu", "gated-gelu")
DTYPES = ("float32", "bfloat16")


@gin.configurable
@dataclasses.dataclass
class ModelConfig:
  """T5 v1.0 by default. T5.1.1 sets ffn_activation="gated-gelu", tie_embeddings=False,
  norm_name="rms_norm" (its checkpoint names) and dropout_rate=0 for pre-training."""
  vocab_size: int = 32128  # 32,100 ids padded to a multiple of 128 (§2.4 + released code).
  d_model: int = 512
  d_ff: int = 2048
  num_heads: int = 8
  d_kv: int = 64
  num_encoder_layers: int = 6
  num_decoder_layers: int = 6
  dropout_rate: float = 0.1
  relative_attention_num_buckets: int = 32
  relative_attention_max_distance: int = 128
  architecture: str = "encoder_decoder"
  ffn_activation: str = "relu"
  tie_embeddings: bool = True
  norm_name: str = "layer_norm"
  layer_norm_epsilon: float = 1e-6
  z_loss: float = 1e-4  # As released (mesh_tensorflow Unitransformer); training only.
  loss_normalization: str = "positions"  # As released; "tokens": mean over target tokens.
  activation_dtype: str = "float32"
  # Stored (master) weights: "bfloat16" is what the released code stores by default (half the
  # checkpoint); a checkpoint of either dtype restores into either setting.
  master_dtype: str = "float32"
  adapter_dim: int = 0  # §3.5.1 adapter layers after each FFN; 0 = none.

  def __post_init__(self):
    checks = [("architecture", self.architecture, ARCHITECTURES),
              ("ffn_activation", self.ffn_activation, FFN_ACTIVATIONS),
              ("activation_dtype", self.activation_dtype, DTYPES),
              ("master_dtype", self.master_dtype, DTYPES),
              ("norm_name", self.norm_name, ("layer_norm", "rms_norm")),
              ("loss_normalization", self.loss_normalization, ("positions", "tokens"))]
    for name, value, allowed in checks:
      if value not in allowed:
        raise ValueError(f"ModelConfig.{name}={value!r} is not one of {list(allowed)}")
    for name in ("vocab_size", "d_model", "d_ff", "num_heads", "d_kv"):
      if getattr(self, name) <= 0:
        raise ValueError(f"ModelConfig.{name} must be positive, got {getattr(self, name)}")
    if self.vocab_size % 128:
      raise ValueError(f"ModelConfig.vocab_size={self.vocab_size} must be a multiple of 128 "
                       "(T5 pads 32,100 ids to 32,128)")
    if self.is_decoder_only and self.num_decoder_layers <= 0:
      raise ValueError("a decoder-only architecture needs num_decoder_layers > 0")

  @property
  def is_decoder_only(self):
    return self.architecture in ("lm", "prefix_lm")

  def dim_sizes(self, batch_size=None):
    sizes = {"d_model": self.d_model, "d_ff": self.d_ff, "heads": self.num_heads,
             "d_kv": self.d_kv, "vocab": self.vocab_size}
    if batch_size is not None:
      sizes["batch"] = batch_size
    return sizes

  def num_params(self):
    """Parameter count from shapes alone (no weights allocated)."""
    from t5mtf.models import variables
    total = 0
    for shape in variables.expected_shapes(self).values():
      n = 1
      for d in shape:
        n *= d
      total += n
    return total
