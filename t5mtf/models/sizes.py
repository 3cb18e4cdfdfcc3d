"""The paper's model sizes (§3.7), as ModelConfig keyword sets; gin/models/*.gin say the same."""
from t5mtf.models import config as config_lib

SIZES = {
    # name: (d_model, d_ff, num_heads, d_kv, layers per stack)
    "tiny": (64, 256, 4, 16, 2),  # Ours: for CPU tests and the embedded default.
    "small": (512, 2048, 8, 64, 6),
    "base": (768, 3072, 12, 64, 12),
    "large": (1024, 4096, 16, 64, 24),
    "3B": (1024, 16384, 32, 128, 24),
    "11B": (1024, 65536, 128, 128, 24),
}


def config_for(size, **overrides):
  if size not in SIZES:
    raise ValueError(f"unknown model size {size!r}; sizes: {list(SIZES)}")
  d_model, d_ff, heads, d_kv, n = SIZES[size]
  kw = dict(d_model=d_model, d_ff=d_ff, num_heads=heads, d_kv=d_kv, num_encoder_layers=n,
            num_decoder_layers=n)
  kw.update(overrides)
  return config_lib.ModelConfig(**kw)
