"""What compiling the attention's and feed-forward's elementwise work with XLA buys
(``layers.elementwise``): our T5-small training step built twice in one process, with the
functions compiled and as plain TensorFlow ops (``layers.XLA_ELEMENTWISE = False``), and run
alternately, one step each, in alternating order.

On a shared VM the speed drifts by 10-30% over minutes; steps taken seconds apart see the same
machine, so the per-pair ratio is what to read, not two medians taken minutes apart.

    .venv/bin/python bench/fusion.py [--pairs 10] [--threads 2] [--dtype float32]
        [--inter_op_threads N]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import t5mtf  # noqa: E402,F401  (first: it sets TensorFlow's environment)

from bench import common, train_step  # noqa: E402
from t5mtf.models import layers  # noqa: E402


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--pairs", type=int, default=10)
  ap.add_argument("--threads", type=int, default=2)
  ap.add_argument("--warmup", type=int, default=2)
  ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  ap.add_argument("--inter_op_threads", type=int, default=None,
                  help="default: --threads (1 is bench/profile.py's setting)")
  args = ap.parse_args()
  sides = {}
  for name, xla in (("compiled", True), ("plain", False)):
    layers.XLA_ELEMENTWISE = xla
    sides[name] = train_step.ours_train_session(
        args.dtype, args.threads, inter_op_threads=args.inter_op_threads)[:2]
  layers.XLA_ELEMENTWISE = True
  for sess, op in sides.values():
    for _ in range(args.warmup):
      sess.run(op)
  seconds = {name: [] for name in sides}
  for i in range(args.pairs):
    for name in sorted(sides, reverse=bool(i % 2)):
      sess, op = sides[name]
      start = time.perf_counter()
      sess.run(op)
      seconds[name].append(time.perf_counter() - start)
  for sess, _ in sides.values():
    sess.close()
  ratios = np.array(seconds["plain"]) / np.array(seconds["compiled"])
  print(f"T5-small training step, batch {train_step.BATCH}, inputs {train_step.INPUTS}, targets "
        f"{train_step.TARGETS}, {args.dtype}, {common.threads(args.threads)}, "
        f"{args.pairs} alternating pairs, {common.cpu_model()}")
  for name, xs in seconds.items():
    print(f"  {name:9s} {' '.join(f'{x:.2f}' for x in xs)} s; median {np.median(xs):.2f} s")
  print(f"  plain / compiled per pair: {' '.join(f'{r:.2f}' for r in ratios)}; "
        f"median {np.median(ratios):.3f}x")


if __name__ == "__main__":
  main()
