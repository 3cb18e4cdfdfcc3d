"""Where a greedy decoding step's time goes (T5-small, inputs 512, bench/decode.py's weights),
by subtraction, and how fast the step's small matrix products read their weights.

Parts: the same decode built again with one part's per-step work removed (the vocabulary
logits cut to 128 entries; the feed-forward blocks as the identity; self-attention or
encoder-decoder attention reduced to its query and output projections, whose products with the
keys and values, softmax and cache writes go), and once with a single new token (the encoder,
the encoder-decoder keys/values and one step: the fixed cost). Removing the cross-attention
products would leave the encoder unread, so that variant keeps the keys and values alive (a
one-slot read of each layer's after the loop). All graphs run in turn, one decode each per
round, in one process: on a shared VM the speed drifts over minutes, decodes seconds apart see
the same machine. A part's saving is the base decode's median minus the variant's, per step; the
savings overlap (the parts share the memory bus and caches), so they are not shares of a step.

Kernels: each weight shape of a step as a product with ``batch`` rows (oneDNN's matmul, as the
step runs it; and as a batched matmul of one matrix, which oneDNN runs with another kernel)
against a reduce_sum of the same weights (the rate memory allows), as many distinct copies as a
step reads (six layers, so caches do not help). The parts' table has a row for the whole decode
with every 2-D product of a step run as that batched matmul (same outputs, checked), since
which kernel is faster depends on the CPU and the number of rows.

    .venv/bin/python bench/decode_parts.py [--batch 8] [--new_tokens 128] [--rounds 5]
        [--threads 2]
"""
import argparse
import contextlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import t5mtf  # noqa: E402,F401  (first: it sets TensorFlow's environment)
import mesh_tensorflow as mtf  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

from bench import common, decode, train_step  # noqa: E402
from t5mtf.models import decoding, layers, sizes, transformer  # noqa: E402


@contextlib.contextmanager
def patched(module, name, value):
  original = getattr(module, name)
  setattr(module, name, value)
  try:
    yield
  finally:
    setattr(module, name, original)


def without_attention(memory_name):
  """attend() for memory_name as its query and output projections only."""
  original = layers.attend

  def attend(ctx, params, x, k, v, bias, memory_dim):
    if memory_dim.name != memory_name:
      return original(ctx, params, x, k, v, bias, memory_dim)
    q = layers.dense(ctx, x, params["q"], [ctx.d_model])
    return layers.dense(ctx, q, params["o"], [ctx.heads, ctx.d_kv])
  return patched(layers, "attend", attend)


def without_logits():
  original = decoding.tied_logits_table
  return patched(decoding, "tied_logits_table",
                 lambda model, ctx: mtf.slice(original(model, ctx), 0, 128, "vocab"))


def without_ffn():
  original = transformer.T5Model._ffn
  return patched(transformer.T5Model, "_ffn",
                 lambda self, ctx, h: h if ctx.few_rows else original(self, ctx, h))


@contextlib.contextmanager
def keys_kept(kept):
  """Records the encoder-decoder keys and values (project_kv with keys_heads_last) in
  ``kept``."""
  original = layers.project_kv

  def project_kv(ctx, params, memory, keys_heads_last=False):
    k, v = original(ctx, params, memory, keys_heads_last)
    if keys_heads_last:
      kept.extend([k, v])
    return k, v
  with patched(layers, "project_kv", project_kv):
    yield


def as_batched_matmuls():
  """tf.matmul of two 2-D operands as a BatchMatMulV2 of one matrix (oneDNN's matmul primitive
  instead of its sgemm), while a graph is built."""
  original = tf.matmul

  def matmul(a, b, transpose_a=False, transpose_b=False, **kwargs):
    if a.shape.ndims != 2 or b.shape.ndims != 2:
      return original(a, b, transpose_a=transpose_a, transpose_b=transpose_b, **kwargs)
    return original(a[None], b[None], transpose_a=transpose_a, transpose_b=transpose_b,
                    **kwargs)[0]
  return patched(tf, "matmul", matmul)


def build(config, arrays, inputs, new_tokens, threads, part):
  """A session and fetch of greedy decoding with ``part``'s work removed, or for "batched
  matmuls" its 2-D products run as batched ones (None: the decode as it runs)."""
  kept = []
  variants = {"logits": without_logits, "feed-forward": without_ffn,
             "self-attention": lambda: without_attention("decode_memory"),
             "cross-attention": lambda: without_attention("memory_length"),
             "batched matmuls": as_batched_matmuls}

  def keep_encoder(out):  # Removing the cross-attention: still read a slot of each key/value.
    first = [mtf.reduce_sum(mtf.slice(t, 0, 1, "memory_length")) for t in kept]
    return out + mtf.cast(mtf.less(mtf.add_n(first), -np.inf), tf.int32)
  with patched(decoding, "EOS_ID", -1), keys_kept(kept), \
      (variants[part]() if part in variants else contextlib.nullcontext()):
    return decode.ours_session(config, arrays, inputs, new_tokens, 1, threads,
                               keep_encoder if part == "cross-attention" else None)


def alternate(runners, rounds):
  """{name: fn} -> {name: median seconds}, each round every fn once, the order rotating."""
  names, times = list(runners), {name: [] for name in runners}
  for r in range(rounds):
    for name in names[r % len(names):] + names[:r % len(names)]:
      start = time.perf_counter()
      runners[name]()
      times[name].append(time.perf_counter() - start)
  return {name: float(np.median(t)) for name, t in times.items()}


def parts(config, arrays, args):
  inputs = decode.random_inputs(args.batch)
  graphs = {"all": build(config, arrays, inputs, args.new_tokens, args.threads, None),
            "one step": build(config, arrays, inputs, 1, args.threads, None)}
  names = ["logits", "feed-forward", "self-attention", "cross-attention"]
  for part in names + ["batched matmuls"]:
    graphs[part] = build(config, arrays, inputs, args.new_tokens, args.threads, part)
  same = np.array_equal(*(s.run(f) for s, f in (graphs["all"], graphs["batched matmuls"])))
  seconds = alternate({k: (lambda s=s, f=f: s.run(f)) for k, (s, f) in graphs.items()},
                      args.rounds)
  total, fixed = seconds["all"], seconds["one step"]
  step = (total - fixed) / (args.new_tokens - 1)
  print(f"\ngreedy, batch {args.batch}, {args.new_tokens} new tokens: {total:.2f} s; encoder "
        f"+ first step {fixed:.2f} s; a step {step * 1e3:.1f} ms (median of {args.rounds})")
  print("| removed | saves per step, ms | of a step |\n|---|---|---|")
  for part in names:
    cost = (total - seconds[part]) / args.new_tokens
    print(f"| {part} | {cost * 1e3:.1f} | {cost / step:.0%} |")
  print("(The savings overlap: the parts share the memory bus and the caches, so removing one "
        "speeds up the others too, and they may add up to more than a step.)")
  batched = seconds["batched matmuls"]
  print(f"\nevery 2-D product of a step as a batched matmul: {batched:.2f} s, "
        f"{total / batched:.3f}x the decode as it runs; outputs {'' if same else 'NOT '}"
        "identical")


def kernels(config, args):
  c, rows, rng = config, args.batch, np.random.RandomState(0)
  layers_n = c.num_decoder_layers
  shapes = [("logits (tied table)", c.d_model, c.vocab_size, 1),
            ("feed-forward in", c.d_model, c.d_ff, layers_n),
            ("feed-forward out", c.d_ff, c.d_model, layers_n),
            ("attention projections", c.d_model, c.num_heads * c.d_kv, 6 * layers_n)]
  print(f"\n{rows} rows x weights, {common.threads(args.threads)}, median of 30, "
        "alternating\n| weights | copies | MB | matmul ms | matmul GB/s | batched matmul ms | "
        "reduce_sum GB/s |")
  print("|---|---|---|---|---|---|---|")
  for name, k, n, copies in shapes:
    runners = {}
    for kind in ("matmul", "batch_matmul", "reduce_sum"):
      graph = tf.Graph()
      with graph.as_default():
        x = tf.constant(rng.randn(rows, k).astype(np.float32))
        ws = [tf.Variable(rng.randn(k, n).astype(np.float32)) for _ in range(copies)]
        product = {"matmul": lambda w: tf.matmul(x, w),
                   "batch_matmul": lambda w: tf.matmul(x[None], w[None]),
                   "reduce_sum": lambda w: w}[kind]
        read = [tf.reduce_sum(product(w)) for w in ws]
        out = tf.add_n(read)
        sess = tf.Session(config=train_step.session_config(args.threads))
        sess.run(tf.global_variables_initializer())
        sess.run(out)
      runners[kind] = lambda s=sess, o=out: s.run(o)
    seconds = alternate(runners, 30)
    mb = k * n * 4 * copies / 1e6
    print(f"| {name} [{k}, {n}] | {copies} | {mb:.0f} | {seconds['matmul'] * 1e3:.2f} | "
          f"{mb / seconds['matmul'] / 1e3:.1f} | {seconds['batch_matmul'] * 1e3:.2f} | "
          f"{mb / seconds['reduce_sum'] / 1e3:.1f} |")


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--batch", type=int, default=8)
  ap.add_argument("--new_tokens", type=int, default=128)
  ap.add_argument("--rounds", type=int, default=5)
  ap.add_argument("--threads", type=int, default=2)
  args = ap.parse_args()
  if args.new_tokens < 2:
    ap.error("--new_tokens must be at least 2 (a step is the difference from one token)")
  config = sizes.config_for("small")
  print(f"T5-small, inputs {decode.INPUTS}, {common.threads(args.threads)}, {common.cpu_model()}")
  parts(config, decode.weights(config), args)
  kernels(config, args)


if __name__ == "__main__":
  main()
