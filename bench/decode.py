"""Decoding speed at T5-small shapes, ours vs Hugging Face ``generate``, same weights.

    .venv/bin/python bench/decode.py [--threads 2] [--batches 1,8,32] [--lengths 32,64,128,256]
                                     [--beams 1,4] [--runs 2]

Inputs of 512 random tokens, 128 new tokens, greedy and beam search (beam 4, alpha 0.6), batch
1, 8 and 32; then greedy at batch 8 for 32/64/128/256 new tokens (a key/value cache makes the
time grow linearly; the sweep's two ends split each side's time into a step and a fixed cost,
the encoder's). Our random weights go to HF through our converter; EOS's output embedding
is zeroed on both sides so that no sequence stops early and both decode every step (the same
work). Outputs are compared token by token before any time is reported.

Beam search ranks every beam x vocabulary candidate (``search="exhaustive"``), as HF does; the
released prefilter (our default, the original's outputs) keeps 2 candidates per beam first and
ends on other beams than HF's (0 of 8 rows identical at batch 8).
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import t5mtf  # noqa: E402,F401  (first: it sets TensorFlow's environment)
import mesh_tensorflow as mtf  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

from bench import common  # noqa: E402

INPUTS = 512


def random_inputs(batch, seed=0):
  return np.random.RandomState(seed).randint(2, 32000, (batch, INPUTS)).astype(np.int32)


def weights(config, seed=0):
  """Our random T5-small weights (N(0, 0.05), norm scales 1), EOS's row of the embedding zeroed."""
  from t5mtf.models import variables as variables_lib
  rng = np.random.RandomState(seed)
  arrays = {name: (np.ones(shape, np.float32) if "norm" in name else
                   rng.normal(0, 0.05, shape).astype(np.float32))
            for name, shape in sorted(variables_lib.expected_shapes(config).items())}
  arrays["shared/embedding"][1] = 0.0  # EOS never wins the argmax: every step is decoded.
  return arrays


def ours_session(config, arrays, inputs, new_tokens, beam, threads, finish=None):
  """(session, fetch) of our greedy / beam decode with ``arrays`` loaded, run once (warm-up).
  finish(mtf outputs) -> mtf outputs, if given, adds to the graph before lowering."""
  from t5mtf.models import decoding, partitioning, transformer
  from bench import train_step
  graph = tf.Graph()
  with graph.as_default():
    mtf_graph, mesh = partitioning.new_mesh()
    ids = tf.constant(inputs)
    feats = partitioning.import_features(mesh, {"inputs": ids,
                                                "inputs_segment_ids": tf.ones_like(ids)})
    model = transformer.T5Model(config, mesh)
    if beam > 1:
      out = decoding.beam_search_decode(model, feats["inputs"], feats["inputs_segment_ids"],
                                        new_tokens, beam, 0.6, search="exhaustive")
    else:
      out = decoding.greedy_decode(model, feats["inputs"], feats["inputs_segment_ids"],
                                   new_tokens)
    out = finish(out) if finish else out
    lowering = mtf.Lowering(mtf_graph, {mesh: partitioning.placement_mesh_impl()},
                            autostack=False)
    fetch = lowering.export_to_tf_tensor(out)
    sess = tf.Session(config=train_step.session_config(threads))
    sess.run(tf.global_variables_initializer())
    for var in mtf_graph.all_variables:
      sess.run(var.get_master().assign(arrays[var.name]))
    sess.run(lowering.copy_masters_to_slices())
    sess.run(fetch)
  return sess, fetch


def ours(config, arrays, inputs, new_tokens, beam, threads, runs):
  """(median seconds, outputs [batch, new_tokens]) of our greedy / beam decode."""
  sess, fetch = ours_session(config, arrays, inputs, new_tokens, beam, threads)
  result = {}

  def run():
    result["ids"] = sess.run(fetch)
  try:
    seconds = common.time_steps(run, runs, warmup=0)  # ours_session ran the warm-up.
  finally:
    sess.close()
  return seconds, result["ids"]


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--threads", type=int, default=2)
  ap.add_argument("--batches", default="1,8,32")
  ap.add_argument("--lengths", default="32,64,128,256")
  ap.add_argument("--beams", default="1,4", help="1: greedy; 4: beam search (beam 4)")
  ap.add_argument("--runs", type=int, default=2)
  args = ap.parse_args()
  from t5mtf import convert
  from t5mtf.models import sizes
  sys.path.insert(0, os.path.join(common.ROOT, "tests"))
  from peers import hf_env
  config = sizes.config_for("small")
  arrays = weights(config)
  work = tempfile.mkdtemp()
  hf_dir = os.path.join(work, "hf")
  convert.write_hf_dir(arrays, config, hf_dir)
  jobs = [(b, 128, beam) for beam in map(int, args.beams.split(","))
          for b in map(int, args.batches.split(","))]
  jobs += [(8, n, 1) for n in map(int, args.lengths.split(",")) if n != 128]
  rows = []
  for batch, new_tokens, beam in jobs:
    inputs = random_inputs(batch)
    mine, ids = ours(config, arrays, inputs, new_tokens, beam, args.threads, args.runs)
    path = os.path.join(work, f"in_{batch}_{new_tokens}_{beam}.npz")
    np.savez(path, inputs=inputs)
    line = common.run_peer(hf_env.python(), "hf_decode.py", hf_dir, path, path + ".out.npz",
                           args.threads, new_tokens, beam, args.runs)
    theirs_seconds = float(line)
    theirs = np.load(path + ".out.npz")["ids"]
    same = sum(a[:new_tokens].tolist() == b[:new_tokens].tolist() for a, b in zip(ids, theirs))
    rows.append((batch, new_tokens, beam, mine, theirs_seconds, same))
    print(f"batch {batch:2d}, {new_tokens:3d} new tokens, {'greedy' if beam == 1 else 'beam 4'}:"
          f" ours {batch * new_tokens / mine:7.1f} tokens/s, HF "
          f"{batch * new_tokens / theirs_seconds:7.1f} tokens/s, ratio "
          f"{theirs_seconds / mine:.2f}x; identical outputs {same}/{batch}", flush=True)
  cpu = common.cpu_model()
  print(f"\nT5-small, inputs {INPUTS}, {common.threads(args.threads)}, median of {args.runs} "
        f"runs, {cpu}")
  print("| batch | new tokens | search | ours tokens/s | HF tokens/s | ratio | identical |")
  print("|---|---|---|---|---|---|---|")
  for batch, n, beam, mine, theirs, same in rows:
    print(f"| {batch} | {n} | {'greedy' if beam == 1 else 'beam 4'} | "
          f"{batch * n / mine:.1f} | {batch * n / theirs:.1f} | {theirs / mine:.2f}x | "
          f"{same}/{batch} |")
  sweep = sorted((n, mine, theirs) for b, n, beam, mine, theirs, _ in rows
                 if b == 8 and beam == 1)
  if len(sweep) > 1:
    (n0, t0, h0), (n1, t1, h1) = sweep[0], sweep[-1]
    print(f"\ngreedy batch 8: {n0} -> {n1} new tokens ({n1 / n0:.0f}x) took "
          f"{t1 / t0:.2f}x the time (linear: {n1 / n0:.0f}x; quadratic: {(n1 / n0) ** 2:.0f}x)")
    # The sweep's ends as fixed cost + tokens x step (the step's cost grows with the cache, so
    # this is the mean step over the range): what the encoder and what the steps cost each side.
    step, their_step = (t1 - t0) / (n1 - n0), (h1 - h0) / (n1 - n0)
    print(f"a step {step * 1e3:.1f} ms, HF {their_step * 1e3:.1f} ms ({their_step / step:.2f}x);"
          f" fixed cost (encoder, encoder-decoder keys/values) {t0 - n0 * step:.2f} s, HF "
          f"{h0 - n0 * their_step:.2f} s")


if __name__ == "__main__":
  main()
