"""AdaFactor and the learning-rate schedules of the paper (§3.1.2, §3.7).

- Pre-training: inverse square root ``1/sqrt(max(n, k))`` with k = 10^4 (0.01 for the first
  10^4 steps).
- Fine-tuning: constant 0.001.
- Triangular (the slanted triangular schedule of Howard & Ruder that §3.1.2 compares): linear
  warm-up from peak / 32 to the peak, then linear decay back to peak / 32.

AdaFactor is mesh-tensorflow's (``mtf.optimize.AdafactorOptimizer``) with the settings the paper
used: factored second moments, decay rate 1 - (n+1)^-0.8, update clipping 1.0, parameter-scale
relative steps, no momentum.
"""
import math
import re

import gin
import mesh_tensorflow as mtf
import tensorflow.compat.v1 as tf


@gin.configurable
def rsqrt_decay(step, warmup_steps=10_000, offset=0):
  """1 / sqrt(max(step - offset, warmup_steps))."""
  step = tf.cast(step - offset, tf.float32)
  return tf.math.rsqrt(tf.maximum(step, float(warmup_steps)))


@gin.configurable
def constant_learning_rate(step, learning_rate=0.001):
  del step
  return tf.constant(learning_rate, tf.float32)


@gin.configurable
def triangular(step, total_steps=gin.REQUIRED, peak=0.01, warmup_fraction=0.1, ratio=32,
               offset=0):
  """Howard & Ruder's slanted triangular schedule, which §3.1.2 found slightly better than the
  inverse square root, as mesh_tensorflow's learning_rate_schedules.slanted_triangular: from
  peak / ratio up to peak over the first floor(total_steps * warmup_fraction) steps, then down
  to peak / ratio at warm-up / warmup_fraction, about total_steps (tests/test_oracle_schedules.py).
  Past total_steps it stays at its value there, where the released formula falls below zero."""
  cut = math.floor(total_steps * warmup_fraction)
  if cut < 1:
    raise ValueError(f"triangular: total_steps * warmup_fraction = {total_steps} * "
                     f"{warmup_fraction} leaves no warm-up step; make it at least 1")
  step = tf.minimum(tf.cast(step, tf.float32) - float(offset), float(total_steps))
  p = tf.where(step < cut, step / cut, 1 - (step - cut) / (cut * (1 / warmup_fraction - 1)))
  return peak * (1 + p * (ratio - 1)) / ratio


SCHEDULES = {"rsqrt_decay": rsqrt_decay, "constant": constant_learning_rate,
             "triangular": triangular}


@gin.configurable
def adafactor(learning_rate, decay_rate_exponent=0.8, clipping_threshold=1.0,
              multiply_by_parameter_scale=True, step_offset=0):
  decay = mtf.optimize.adafactor_decay_rate_pow(decay_rate_exponent, offset=step_offset)
  return mtf.optimize.AdafactorOptimizer(
      multiply_by_parameter_scale=multiply_by_parameter_scale, learning_rate=learning_rate,
      decay_rate=decay, clipping_threshold=clipping_threshold)


def check_schedule(schedule):
  """Builds the schedule once in a scratch graph, so that a missing gin binding or a bad value
  fails before any work, as one line (ValueError) naming what to bind."""
  try:
    with tf.Graph().as_default():
      learning_rate(schedule, tf.constant(0, tf.int64))
  except RuntimeError as e:
    m = re.search(r"Required bindings for `([^`]+)` not provided in config: \[([^\]]*)\]", str(e))
    if not m:
      raise
    name, params = m.group(1), [p.strip(" '") for p in m.group(2).split(",")]
    raise ValueError(f"learning-rate schedule {name} needs {', '.join(params)}; bind it, e.g. "
                     f"--gin_param={name}.{params[0]}=10000") from None


def learning_rate(schedule, step):
  if isinstance(schedule, str):
    if schedule not in SCHEDULES:
      raise ValueError(f"unknown learning-rate schedule {schedule!r}; one of {list(SCHEDULES)}")
    schedule = SCHEDULES[schedule]
  return schedule(step)
