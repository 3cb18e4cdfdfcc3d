"""AdaFactor and the learning-rate schedules of the paper (§3.1.2, §3.7).

- Pre-training: inverse square root ``1/sqrt(max(n, k))`` with k = 10^4 (0.01 for the first
  10^4 steps).
- Fine-tuning: constant 0.001.
- Triangular (the slanted triangular schedule of Howard & Ruder that §3.1.2 compares): linear
  warm-up then linear decay to 0.

AdaFactor is mesh-tensorflow's (``mtf.optimize.AdafactorOptimizer``) with the settings the paper
used: factored second moments, decay rate 1 - (n+1)^-0.8, update clipping 1.0, parameter-scale
relative steps, no momentum.
"""
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
def triangular(step, total_steps=gin.REQUIRED, peak=0.01, warmup_fraction=0.1, offset=0):
  step = tf.cast(step - offset, tf.float32)
  warmup = max(1.0, warmup_fraction * total_steps)
  up = step / warmup
  down = (total_steps - step) / max(1.0, total_steps - warmup)
  return peak * tf.maximum(0.0, tf.minimum(up, down))


SCHEDULES = {"rsqrt_decay": rsqrt_decay, "constant": constant_learning_rate,
             "triangular": triangular}


@gin.configurable
def adafactor(learning_rate, decay_rate_exponent=0.8, clipping_threshold=1.0,
              multiply_by_parameter_scale=True, step_offset=0):
  decay = mtf.optimize.adafactor_decay_rate_pow(decay_rate_exponent, offset=step_offset)
  return mtf.optimize.AdafactorOptimizer(
      multiply_by_parameter_scale=multiply_by_parameter_scale, learning_rate=learning_rate,
      decay_rate=decay, clipping_threshold=clipping_threshold)


def learning_rate(schedule, step):
  if isinstance(schedule, str):
    if schedule not in SCHEDULES:
      raise ValueError(f"unknown learning-rate schedule {schedule!r}; one of {list(SCHEDULES)}")
    schedule = SCHEDULES[schedule]
  return schedule(step)
