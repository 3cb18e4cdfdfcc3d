"""Peak resident memory of one training step, ours vs Hugging Face, each in a fresh process.

T5-small and T5-base shapes, batch 8, inputs 512, targets 114, AdaFactor on both sides (as
bench/train_step.py). Each measurement is its own process (``--child``), so nothing of one run
stays in the next; the peak is the kernel's ``ru_maxrss`` after the steps. Where the memory goes:

- runtime: the process after importing the framework, before any model exists;
- weights and optimizer slots: counted from the variables / optimizer state (bytes);
- after init: resident memory once weights and slots exist, before the first step;
- step: the peak minus "after init" = activations, gradients and the step's temporaries.

Ours also runs with 2 and 4 microbatches (RunSettings.num_microbatches): the same step's
gradients accumulated over smaller pieces, so the activations are those of one piece.
``--xla off`` runs ours with layers.XLA_ELEMENTWISE = False (the elementwise functions as plain
TensorFlow ops), ``--xla both`` each way: what XLA's compiler and compiled code add.

    .venv/bin/python bench/memory.py [--sizes small,base] [--steps 2] [--threads 2] [--repeats 3]
        [--xla on|off|both]
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from bench import common  # noqa: E402
from bench.peers.procmem import peak_mb, rss_mb  # noqa: E402
BATCH, INPUTS, TARGETS = 8, 512, 114
MB = 2 ** 20


def ours(size, steps, threads, microbatches, xla=True):
  import numpy as np
  import t5mtf  # noqa: F401  (first: it sets TensorFlow's environment)
  import mesh_tensorflow as mtf
  import tensorflow.compat.v1 as tf
  runtime = rss_mb()
  from t5mtf.models import layers, partitioning, sizes, transformer
  layers.XLA_ELEMENTWISE = xla
  from t5mtf.train import model_fn, optimizers, settings as settings_lib
  config = sizes.config_for(size)
  settings = settings_lib.RunSettings(model_dir="unused", model=config, batch_size=BATCH, inputs_length=INPUTS,
                                      targets_length=TARGETS, num_microbatches=microbatches)
  with tf.Graph().as_default():
    step = tf.train.get_or_create_global_step()
    rng = np.random.RandomState(0)
    feats = {"inputs": tf.constant(rng.randint(2, 32000, (BATCH, INPUTS)).astype(np.int32)),
             "targets": tf.constant(rng.randint(2, 32000, (BATCH, TARGETS)).astype(np.int32))}
    for k in list(feats):
      feats[k + "_segment_ids"] = tf.ones_like(feats[k])
    graph, mesh = partitioning.new_mesh()
    model = transformer.T5Model(config, mesh)
    _, variables, grads = model_fn._loss_and_grads(
        settings, graph, model, partitioning.import_features(mesh, feats))
    grads = partitioning.ordered_update(grads)
    updates = optimizers.adafactor(optimizers.rsqrt_decay(step)).apply_grads(grads, variables)
    lowering = mtf.Lowering(graph, {mesh: partitioning.placement_mesh_impl()}, autostack=False)
    train_op = tf.group([lowering.lowered_operation(op) for op in updates] +
                        [tf.assign_add(step, 1)])
    weights = sum(v.size * 4 for v in variables)  # fp32 master variables.
    trainable = set(variables)
    slots = sum(v.size * 4 for v in graph.all_variables if v not in trainable)
    # One op at a time (inter-op 1), as torch runs them; a wider inter-op pool runs
    # independent ops side by side and raises the peak by a few hundred MiB.
    config_proto = tf.ConfigProto(intra_op_parallelism_threads=threads,
                                  inter_op_parallelism_threads=1)
    with tf.Session(config=config_proto) as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(lowering.copy_masters_to_slices())
      after_init = rss_mb()
      for _ in range(steps):
        sess.run(train_op)
  return dict(runtime=runtime, weights=weights / MB, slots=slots / MB, after_init=after_init,
              peak=peak_mb())


def child(args):
  side, size, micro, xla = args.child.split(":")
  if side == "ours":
    out = ours(size, args.steps, args.threads, int(micro), xla == "on")
  else:
    raise ValueError(side)
  print(json.dumps(out))


def run_child(python, script_args, repeats):
  """The child's figures, each the median over ``repeats`` fresh processes (the peak varies by
  a few hundred MiB from run to run with the order TensorFlow happens to run ops in), with the
  peaks' range."""
  runs = []
  for _ in range(repeats):
    out = subprocess.run([python, *map(str, script_args)], check=True, capture_output=True,
                         text=True, timeout=7200)
    runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
  median = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
  median["peak_range"] = (min(r["peak"] for r in runs), max(r["peak"] for r in runs))
  return median


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--sizes", default="small,base")
  ap.add_argument("--steps", type=int, default=2)
  ap.add_argument("--threads", type=int, default=2)
  ap.add_argument("--microbatches", default="1,2,4")
  ap.add_argument("--repeats", type=int, default=3)
  ap.add_argument("--skip_hf", action="store_true")
  ap.add_argument("--xla", choices=("on", "off", "both"), default="on",
                  help="our elementwise functions compiled by XLA (on), as plain ops (off), or "
                  "a row each")
  ap.add_argument("--child", help=argparse.SUPPRESS)
  args = ap.parse_args()
  if args.child:
    return child(args)
  sys.path.insert(0, os.path.join(ROOT, "tests"))
  rows = []
  for size in args.sizes.split(","):
    for micro in map(int, args.microbatches.split(",")):
      for xla in ("on", "off") if args.xla == "both" else (args.xla,):
        r = run_child(sys.executable, [os.path.abspath(__file__),
                                       f"--child=ours:{size}:{micro}:{xla}",
                                       f"--steps={args.steps}", f"--threads={args.threads}"],
                      args.repeats)
        rows.append((f"t5mtf {size}" + (f", {micro} microbatches" if micro > 1 else "") +
                     (", no XLA" if xla == "off" else ""), size, r))
        print(rows[-1], flush=True)
    if not args.skip_hf:
      from peers import hf_env
      r = run_child(hf_env.python(), [os.path.join(ROOT, "bench", "peers", "hf_memory.py"),
                                      size, BATCH, INPUTS, TARGETS, args.steps, args.threads],
                    args.repeats)
      rows.append((f"HF transformers {size}", size, r))
      print(rows[-1], flush=True)
  print(f"\nPeak resident memory of a training step, batch {BATCH}, inputs {INPUTS}, targets "
        f"{TARGETS}, AdaFactor, fp32, {common.threads(args.threads)}, each in a fresh process (MiB)")
  print(f"medians of {args.repeats} processes each")
  print("| | runtime | weights | AdaFactor slots | after init | step | peak (range) |")
  print("|---|---|---|---|---|---|---|")
  for name, _, r in rows:
    lo, hi = r["peak_range"]
    print(f"| {name} | {r['runtime']:.0f} | {r['weights']:.0f} | {r['slots']:.1f} | "
          f"{r['after_init']:.0f} | {r['peak'] - r['after_init']:.0f} | {r['peak']:.0f} "
          f"({lo:.0f}-{hi:.0f}) |")
  for size in args.sizes.split(","):
    by = {name: r for name, s, r in rows if s == size}
    hf = by.get(f"HF transformers {size}")
    if hf:
      for name, r in by.items():
        if name.startswith("t5mtf"):
          print(f"  {name}: peak {r['peak'] / hf['peak']:.2f}x HF's; without the runtime "
                f"{(r['peak'] - r['runtime']) / (hf['peak'] - hf['runtime']):.2f}x")


if __name__ == "__main__":
  main()
