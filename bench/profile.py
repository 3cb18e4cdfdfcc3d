"""Where a T5 training step's time goes (T5-small, batch 8, inputs 512, targets 114, fp32 unless
flags say otherwise).

Runs one traced step (TensorFlow's FULL_TRACE, one inter-op thread so that op times add up to
the step) after warm-up steps, and sums op time by part of the model (forward and backward
together): attention blocks, feed-forward blocks, embeddings, logits + loss, AdaFactor. Within
each part it splits matmuls (einsum/matmul) from everything else, which is what can be removed.
The input pipeline is not in this step (the batch is a constant); bench/pipeline.py measures it.

It then measures the fp32 matmul peak (bench/common.py) right after the traced step and prints
the step's model FLOP/s and the traced matmuls' alone against it: the second is the most that
removing every non-matmul op could reach with these matmul kernels.

    .venv/bin/python bench/profile.py [--threads 2] [--size small] [--top 12]
        [--batch 8 --inputs 512 --targets 114] [--no_xla]
"""
import argparse
import collections
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import t5mtf  # noqa: E402,F401  (first: it sets TensorFlow's environment)
import tensorflow.compat.v1 as tf  # noqa: E402

from bench import common, train_step  # noqa: E402

MATMUL_OPS = {"_MklEinsum", "Einsum", "MatMul", "_MklMatMul", "BatchMatMulV2",
              "_MklBatchMatMulV2"}


def part(name):
  """A lowered op's name -> the part of the step it belongs to."""
  if "/adafactor" in name or name.startswith("assign"):
    return "optimizer (AdaFactor)"
  m = re.match(r"(encoder|decoder)/block_\d+/layer_(\d+)/", name)
  if m:
    stack, layer = m.group(1), int(m.group(2))
    ffn = "DenseReluDense" in name or layer == (1 if stack == "encoder" else 2)
    return f"{stack} {'feed-forward' if ffn else 'attention'}"
  if name.startswith(("encoder", "decoder", "shared")):
    return "embeddings, final norms"
  return "logits + loss"


def traced_step(size, threads, warmup, shape):
  sess, train_op, config = train_step.ours_train_session(
      "float32", threads, size, *shape, inter_op_threads=1)
  with sess:
    seconds = common.time_steps(lambda: sess.run(train_op), 2, warmup=warmup)
    meta = tf.RunMetadata()
    sess.run(train_op, options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE),
             run_metadata=meta)
  return seconds, meta, config


def op_times(meta):
  """[(node name, op type, microseconds)] of every op run."""
  out = []
  for dev in meta.step_stats.dev_stats:
    for n in dev.node_stats:
      label = n.timeline_label
      kind = label.split(" = ", 1)[1].split("(", 1)[0] if " = " in label else "?"
      out.append((n.node_name, kind, n.all_end_rel_micros))
  return out


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--threads", type=int, default=2)
  ap.add_argument("--size", default="small")
  ap.add_argument("--warmup", type=int, default=2)
  ap.add_argument("--top", type=int, default=12)
  ap.add_argument("--batch", type=int, default=train_step.BATCH)
  ap.add_argument("--inputs", type=int, default=train_step.INPUTS)
  ap.add_argument("--targets", type=int, default=train_step.TARGETS)
  ap.add_argument("--no_xla", action="store_true", help="the elementwise functions as plain "
                  "TensorFlow ops (layers.XLA_ELEMENTWISE = False): the profile before fusion")
  args = ap.parse_args()
  if args.no_xla:
    from t5mtf.models import layers
    layers.XLA_ELEMENTWISE = False
  shape = (args.batch, args.inputs, args.targets)
  seconds, meta, config = traced_step(args.size, args.threads, args.warmup, shape)
  ops = op_times(meta)
  total = sum(t for _, _, t in ops)
  by_part = collections.defaultdict(lambda: [0, 0])
  by_kind = collections.Counter()
  for name, kind, t in ops:
    by_part[part(name)][kind not in MATMUL_OPS] += t
    by_kind[kind] += t
  matmul = sum(p[0] for p in by_part.values())
  flops = common.t5_train_flops(config, *shape)
  # Measured beside the step: a VM's speed drifts by 10-30% over minutes.
  peak = common.matmul_peak_gflops(threads=args.threads, seconds=2.0)
  print(f"T5-{args.size} training step, batch {args.batch}, inputs {args.inputs}, "
        f"targets {args.targets}, fp32, {common.threads(args.threads)}, "
        f"{'no XLA, ' if args.no_xla else ''}{common.cpu_model()}")
  print(f"untraced step {seconds:.2f} s; traced ops sum {total / 1e6:.2f} s; matmuls "
        f"{100 * matmul / total:.0f}% of op time; model {flops / seconds / 1e9:.0f} GFLOP/s")
  print(f"fp32 matmul peak measured after the step {peak:.0f} GFLOP/s: the step reaches "
        f"{100 * flops / seconds / 1e9 / peak:.0f}% of it; the traced matmuls alone "
        f"({matmul / 1e6:.2f} s) {flops / matmul * 1e6 / 1e9:.0f} GFLOP/s = "
        f"{100 * flops / matmul * 1e6 / 1e9 / peak:.0f}%, the most that removing every other op "
        f"could reach\n")
  print("| part | ms | % of step | matmul ms | other ms |\n|---|---|---|---|---|")
  for name, (mm, other) in sorted(by_part.items(), key=lambda kv: -sum(kv[1])):
    print(f"| {name} | {(mm + other) / 1e3:.0f} | {100 * (mm + other) / total:.1f} | "
          f"{mm / 1e3:.0f} | {other / 1e3:.0f} |")
  print("\n| op type | ms | % of step |\n|---|---|---|")
  for kind, t in by_kind.most_common(args.top):
    print(f"| {kind} | {t / 1e3:.0f} | {100 * t / total:.1f} |")


if __name__ == "__main__":
  main()
