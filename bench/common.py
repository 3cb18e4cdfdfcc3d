"""Shared benchmark helpers: timing, the CPU's measured matmul peak, T5 FLOP counts."""
import os
import subprocess
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cpuinfo():
  """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
  fields = {}
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if not line.strip():  # The first processor is enough.
          break
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
  except OSError:
    pass
  return fields


def cpu_flags():
  """The CPU's instruction-set flags (avx512f, avx512_bf16, amx_bf16, ...)."""
  return _cpuinfo().get("flags", "").split()


def cpu_model():
  """The CPU as /proc/cpuinfo gives it: model name, family / model (a VM's model name, "AMD EPYC",
  does not tell Zen 3 from Zen 5) and the vector extensions that decide the matmul rate."""
  fields = _cpuinfo()
  if not fields:
    return "unknown CPU"
  isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in cpu_flags()]
  return (f"{fields.get('model name', 'unknown CPU')} (family {fields.get('cpu family', '?')} "
          f"model {fields.get('model', '?')}; {', '.join(isa) or 'no AVX2'})")


def threads(n):
  """'1 thread' / '2 threads', for the benchmarks' headers."""
  return f"{n} thread" + ("" if int(n) == 1 else "s")


def matmul_peak_gflops(dtype="float32", n=2048, seconds=3.0, threads=None):
  """Measured fp32 (or bf16) matmul throughput of this CPU through TensorFlow, in a session
  with ``threads`` intra- and inter-op threads (TensorFlow's default: one per core)."""
  import tensorflow.compat.v1 as tf
  with tf.Graph().as_default():
    a = tf.random.normal([n, n], dtype=tf.float32)
    b = tf.random.normal([n, n], dtype=tf.float32)
    if dtype == "bfloat16":
      a, b = tf.cast(a, tf.bfloat16), tf.cast(b, tf.bfloat16)
    a, b = tf.Variable(a), tf.Variable(b)
    product = tf.reduce_sum(tf.matmul(a, b))  # Fetch a scalar: no copy of the product timed.
    config = tf.ConfigProto(intra_op_parallelism_threads=threads or 0,
                            inter_op_parallelism_threads=threads or 0)
    with tf.Session(config=config) as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(product)
      count, start = 0, time.perf_counter()
      while time.perf_counter() - start < seconds:
        sess.run(product)
        count += 1
      return 2 * n ** 3 * count / (time.perf_counter() - start) / 1e9


def t5_train_flops(c, batch, inputs_length, targets_length):
  """Matmul FLOPs of one training step (forward x3), as usually counted for MFU."""
  hk = c.num_heads * c.d_kv
  enc_tok, dec_tok = batch * inputs_length, batch * targets_length
  dense_enc = c.num_encoder_layers * (4 * c.d_model * hk + 2 * c.d_model * c.d_ff)
  dense_dec = c.num_decoder_layers * (8 * c.d_model * hk + 2 * c.d_model * c.d_ff)
  attn_enc = c.num_encoder_layers * 2 * inputs_length * hk  # QK^T and AV, per token
  attn_dec = c.num_decoder_layers * 2 * (targets_length + inputs_length) * hk
  logits = c.d_model * c.vocab_size
  forward = 2 * (enc_tok * (dense_enc + attn_enc) + dec_tok * (dense_dec + attn_dec + logits))
  return 3 * forward


def time_steps(step_fn, steps, warmup=1):
  for _ in range(warmup):
    step_fn()
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    step_fn()
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def run_peer(python, script, *args):
  out = subprocess.run([python, os.path.join(ROOT, "bench", "peers", script), *map(str, args)],
                       check=True, capture_output=True, text=True, timeout=3600)
  return out.stdout.strip().splitlines()[-1]


def examples_per_second(ds, n, batch=128):
  """Examples/s of a tf.data pipeline read in batches (as a training loop reads it), after a
  warm-up batch. Shared by our side and the peers' (which put the repo root on sys.path)."""
  it = iter(ds.batch(batch))
  next(it)
  start = time.perf_counter()
  steps = max(1, n // batch)
  for _ in range(steps):
    next(it)
  return steps * batch / (time.perf_counter() - start)
