"""t5mtf: the T5 stack of Raffel et al. (JMLR 2020) on Mesh-TensorFlow."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's C++ INFO lines drown our own logs.
# oneDNN's CPU kernels for TensorFlow's matmuls and einsums (TensorFlow turns them on by itself
# only on Intel CPUs with AVX-512 VNNI/BF16/AMX). On AMD EPYC (Zen 3) they took a T5-small
# training step from 22.0 to 15.3 s and the batch-32 encoder from 16.6 to 12.2 s on one core
# (bench/train_step.py, bench/decode.py): Eigen's fp32 GEMM there reaches ~55 GFLOP/s, oneDNN's
# ~80. Values differ from Eigen's only in rounding (another summation order). Must precede the
# first TensorFlow import; TF_ENABLE_ONEDNN_OPTS=0 in the environment keeps Eigen's kernels.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
