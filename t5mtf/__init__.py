"""t5mtf: the T5 stack of Raffel et al. (JMLR 2020) on Mesh-TensorFlow."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's C++ INFO lines drown our own logs.
