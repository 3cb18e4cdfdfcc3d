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
import numbers
import os

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
    check_field_types(self)
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
    self._check_ranges()

  def _check_ranges(self):
    """Values that would build a model silently different from the one asked for (a negative
    layer count builds none), or fail deep in the graph (zero buckets: a division by zero)."""
    if self.num_decoder_layers < 1:
      raise ValueError(f"ModelConfig.num_decoder_layers={self.num_decoder_layers} must be at "
                       "least 1")
    low = 0 if self.is_decoder_only else 1  # lm / prefix_lm: no encoder (§3.2.2).
    if self.num_encoder_layers < low:
      raise ValueError(f"ModelConfig.num_encoder_layers={self.num_encoder_layers} must be at "
                       f"least {low} for architecture {self.architecture!r}")
    if not 0 <= self.dropout_rate < 1:
      raise ValueError(f"ModelConfig.dropout_rate={self.dropout_rate} must be in [0, 1) (the "
                       "paper uses 0.1)")
    if self.layer_norm_epsilon <= 0:
      raise ValueError(f"ModelConfig.layer_norm_epsilon={self.layer_norm_epsilon} must be "
                       "positive (the paper's code uses 1e-6)")
    if self.z_loss < 0 or self.adapter_dim < 0:
      raise ValueError(f"ModelConfig.z_loss={self.z_loss} and adapter_dim={self.adapter_dim} "
                       "must not be negative")
    # Bidirectional buckets are halved by sign, then half of those are exact distances: fewer
    # than 4 leaves no exact bucket; the log-spaced ones need max_distance beyond the exact.
    buckets, distance = self.relative_attention_num_buckets, self.relative_attention_max_distance
    if buckets < 4 or distance <= buckets // 2:
      raise ValueError(f"ModelConfig.relative_attention_num_buckets={buckets} must be at least "
                       f"4 and relative_attention_max_distance={distance} more than half of it "
                       "(the paper's code: 32 and 128)")

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


def gin_text(config, writer):
  """``config`` as gin bindings (model.gin beside a checkpoint, which t5mtf.convert reads)."""
  lines = [f"# Written by {writer}."]
  for field, value in sorted(vars(config).items()):
    lines.append(f"ModelConfig.{field} = {value!r}")
  lines.append("RunSettings.model = @ModelConfig()")
  return "\n".join(lines) + "\n"


_KINDS = {bool: "True or False", int: "a whole number", float: "a number",
          str: "a string in quotes", tuple: "a tuple of strings, e.g. ('a', 'b')"}


def check_field_types(obj):
  """Raises a ValueError naming the first field of dataclass ``obj`` whose value is not of its
  declared type. Gin binds any literal, and a wrong one would otherwise pass silently (pack=2
  or tie_embeddings='no' are true) or fail deep inside a run. Lists become tuples."""
  name = type(obj).__name__
  for field in dataclasses.fields(obj):
    value, kind = getattr(obj, field.name), field.type
    if kind is bool:
      ok = isinstance(value, bool)
    elif kind is int:
      ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    elif kind is float:
      ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    elif kind is str:
      ok = isinstance(value, (str, os.PathLike))
    elif kind is tuple:
      ok = isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value)
      if ok:
        setattr(obj, field.name, tuple(value))
    else:
      continue
    if not ok:
      raise ValueError(f"{name}.{field.name}={value!r} must be {_KINDS[kind]}")
