"""The learning-rate schedules against the released mesh_tensorflow.transformer
learning_rate_schedules (in the original t5 venv), step by step: pre-training's inverse square
root (truncated_rsqrt, and learning_rate_schedule_noam without its ramp-down, as t5's
rsqrt_no_ramp_down.gin binds it, with a fine-tuning offset), fine-tuning's constant, and the
slanted triangular schedule §3.1.2 compares (slanted_triangular)."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from t5mtf.train import optimizers
from tests.peers import t5_env

pytestmark = pytest.mark.slow

MODULE = "mesh_tensorflow.transformer.learning_rate_schedules"
# (ours, keyword arguments; the released function, its keyword arguments, total steps)
TRIANGULAR = [dict(total_steps=t, peak=lr, warmup_fraction=f, ratio=r, offset=o)
              for t in (100, 1000, 262_144) for f in (0.1, 0.25) for r in (32, 10)
              for lr in (0.01, 0.001) for o in (0, 1000)]
CASES = ([("rsqrt_decay", {}, "truncated_rsqrt", {}, 524_288),
          ("rsqrt_decay", {"warmup_steps": 100}, "truncated_rsqrt", {"warmup_steps": 100}, 1000),
          ("rsqrt_decay", {"offset": 5000}, "learning_rate_schedule_noam",
           {"linear_decay_fraction": 0.0, "offset": 5000}, 524_288),
          ("constant_learning_rate", {}, "constant_learning_rate", {"learning_rate": 0.001},
           262_144)] +
         [("triangular", kw, "slanted_triangular",
           {"cut_fraction": kw["warmup_fraction"], "ratio": kw["ratio"],
            "max_learning_rate": kw["peak"], "start_step": kw["offset"]}, kw["total_steps"])
          for kw in TRIANGULAR])


def steps(total, offset=0):
  """The ends, the warm-up's edges and points between, from the offset to the last step."""
  cuts = {int(total * f) for f in (0.1, 0.25)}
  points = {0, 1, total // 3, total // 2, total - 1, total} | cuts | {c - 1 for c in cuts} | \
      {c + 1 for c in cuts} | {9999, 10_000, 10_001, 40_000}
  return sorted(offset + p for p in points if 0 <= p <= total)


def test_schedules_give_the_released_learning_rates():
  jobs, ours = [], []
  with tf.Graph().as_default(), tf.Session() as sess:
    for name, kwargs, theirs, their_kwargs, total in CASES:
      for step in steps(total, kwargs.get("offset", 0)):
        jobs.append({"op": "call", "module": MODULE, "fn": theirs, "args": [step],
                     "kwargs": {"total_train_steps": total, **their_kwargs}})
        ours.append(getattr(optimizers, name)(tf.constant(step), **kwargs))
    ours = sess.run(ours)
  answers = [t5_env.ok(a) for a in t5_env.ask(jobs)]
  different = [(job["fn"], job["kwargs"], job["args"][0], float(o), t)
               for job, o, t in zip(jobs, ours, answers) if np.float32(o) != np.float32(t)]
  print(f"{len(jobs)} steps of {len(CASES)} schedules")
  assert not different, different[:5]
