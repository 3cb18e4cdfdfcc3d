"""How cost grows with the work, ours vs Hugging Face on the same CPU and threads:

- training step time vs sequence length (inputs 256 -> 2048, targets a quarter of it, batch 2,
  T5-small): attention's share grows quadratically, the rest linearly;
- training step time vs model size (tiny -> small -> base, batch 8, inputs 512, targets 114);
- greedy decoding time vs new tokens (32 -> 256, batch 8, T5-small, inputs 512; a key/value
  cache makes it linear), same weights and identical outputs (bench/decode.py).

Each point runs both sides in this one run; prints the table and the ratios and writes
bench/scaling.png (log-log).

    .venv/bin/python bench/scaling.py [--threads 2] [--steps 2] [--png bench/scaling.png]
"""
import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench import common, decode, train_step  # noqa: E402


def hf_step_seconds(python, threads, batch, inputs, targets, steps, size):
  return float(common.run_peer(python, "hf_train_step.py", threads, batch, inputs, targets,
                               steps, size))


def ours_step_seconds(threads, batch, inputs, targets, steps, size):
  """In a fresh process: TensorFlow keeps each session's memory pool for the life of the
  process, and T5-base after the 2048-token runs no longer fit in 24 GB."""
  out = subprocess.run([sys.executable, os.path.abspath(__file__),
                        f"--child={size}:{batch}:{inputs}:{targets}", f"--steps={steps}",
                        f"--threads={threads}"], check=True, capture_output=True, text=True)
  return float(out.stdout.strip().splitlines()[-1])


def curves(args, hf_python):
  out = {"length": [], "size": [], "decode": []}
  for length in map(int, args.lengths.split(",")):
    shape = (2, length, length // 4)
    ours = ours_step_seconds(args.threads, *shape, args.steps, "small")
    hf = hf_step_seconds(hf_python, args.threads, *shape, args.steps, "small")
    out["length"].append((length, ours, hf))
    print(f"train, T5-small, batch 2, inputs {length}: ours {ours:.2f} s, HF {hf:.2f} s, "
          f"ratio {hf / ours:.2f}x", flush=True)
  for size in args.sizes.split(","):
    shape = (train_step.BATCH, train_step.INPUTS, train_step.TARGETS)
    ours = ours_step_seconds(args.threads, *shape, args.steps, size)
    hf = hf_step_seconds(hf_python, args.threads, *shape, args.steps, size)
    out["size"].append((size, ours, hf))
    print(f"train, {size}, batch 8, 512/114: ours {ours:.2f} s, HF {hf:.2f} s, ratio "
          f"{hf / ours:.2f}x", flush=True)
  from t5mtf import convert
  from t5mtf.models import sizes
  config = sizes.config_for("small")
  arrays = decode.weights(config)
  work = tempfile.mkdtemp()
  hf_dir = os.path.join(work, "hf")
  convert.write_hf_dir(arrays, config, hf_dir)
  inputs = decode.random_inputs(8)
  path = os.path.join(work, "inputs.npz")
  np.savez(path, inputs=inputs)
  for n in map(int, args.new_tokens.split(",")):
    ours, ids = decode.ours(config, arrays, inputs, n, 1, args.threads, args.steps)
    hf = float(common.run_peer(hf_python, "hf_decode.py", hf_dir, path, path + ".out.npz",
                               args.threads, n, 1, args.steps))
    same = np.array_equal(ids[:, :n], np.load(path + ".out.npz")["ids"][:, :n])
    out["decode"].append((n, ours, hf))
    print(f"greedy decode, batch 8, {n} new tokens: ours {ours:.2f} s, HF {hf:.2f} s, ratio "
          f"{hf / ours:.2f}x, identical outputs: {same}", flush=True)
  return out


def growth(points):
  """Time ratio last/first point, per side."""
  (_, o0, h0), (_, o1, h1) = points[0], points[-1]
  return o1 / o0, h1 / h0


def plot(out, path, title):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
  panels = [("length", "inputs length (batch 2, T5-small)", "s / training step"),
            ("size", "model size (batch 8, 512/114)", "s / training step"),
            ("decode", "new tokens (greedy, batch 8, T5-small)", "s / decode")]
  for ax, (key, xlabel, ylabel) in zip(axes, panels):
    xs = [p[0] for p in out[key]]
    pos = list(range(len(xs))) if key == "size" else xs
    ax.plot(pos, [p[1] for p in out[key]], "o-", label="t5mtf")
    ax.plot(pos, [p[2] for p in out[key]], "s--", label="HF transformers")
    ax.set_yscale("log")
    if key == "size":
      ax.set_xticks(pos)
      ax.set_xticklabels(xs)
    else:
      ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=100)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--threads", type=int, default=2)
  ap.add_argument("--steps", type=int, default=2)
  ap.add_argument("--lengths", default="256,512,1024,2048")
  ap.add_argument("--sizes", default="tiny,small,base")
  ap.add_argument("--new_tokens", default="32,64,128,256")
  ap.add_argument("--png", default=os.path.join(common.ROOT, "bench", "scaling.png"))
  ap.add_argument("--child", help=argparse.SUPPRESS)
  args = ap.parse_args()
  if args.child:
    size, batch, inputs, targets = args.child.split(":")
    print(train_step.ours_step_seconds("float32", args.steps, args.threads, size, int(batch),
                                       int(inputs), int(targets))[0])
    return
  sys.path.insert(0, os.path.join(common.ROOT, "tests"))
  from peers import hf_env
  out = curves(args, hf_env.python())
  cpu = common.cpu_model()
  print(f"\n{cpu}, {common.threads(args.threads)}, median of {args.steps} steps")
  for key, what in (("length", "inputs"), ("size", "size"), ("decode", "new tokens")):
    print(f"| {what} | ours s | HF s | HF / ours |\n|---|---|---|---|")
    for x, ours, hf in out[key]:
      print(f"| {x} | {ours:.3f} | {hf:.3f} | {hf / ours:.2f}x |")
    if key != "size":
      o, h = growth(out[key])
      first, last = out[key][0][0], out[key][-1][0]
      print(f"{first} -> {last} ({last / first:.0f}x): ours {o:.1f}x the time, HF {h:.1f}x\n")
  plot(out, args.png, f"t5mtf vs HF transformers, {cpu}, {common.threads(args.threads)}")
  print(f"wrote {args.png}")


if __name__ == "__main__":
  main()
