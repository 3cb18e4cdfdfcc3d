"""Training speed at T5-small shapes (batch 8, inputs 512, targets 114), one run, three systems:

- t5mtf (fp32 and bfloat16 activations),
- mesh_tensorflow.transformer's own Bitransformer configured as T5 v1 (same venv),
- Hugging Face T5 on torch (its own venv; same thread count), fp32 and with bfloat16 autocast;

AdaFactor everywhere.

    .venv/bin/python bench/train_step.py [--steps 3] [--threads 2] [--skip_hf] [--rounds 3]

Prints tokens/s, the ratios, and our model FLOPs as a fraction of this CPU's measured fp32
matmul peak (measured in each round, right after our fp32 steps).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import t5mtf  # noqa: E402,F401  (first: it sets TensorFlow's environment)
import mesh_tensorflow as mtf  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

from bench import common  # noqa: E402

BATCH, INPUTS, TARGETS = 8, 512, 114


def random_batch(batch=BATCH, inputs=INPUTS, targets=TARGETS):
  rng = np.random.RandomState(0)
  return {"inputs": rng.randint(2, 32000, (batch, inputs)).astype(np.int32),
          "targets": rng.randint(2, 32000, (batch, targets)).astype(np.int32)}


def session_config(threads):
  return tf.ConfigProto(intra_op_parallelism_threads=threads,
                        inter_op_parallelism_threads=threads)


def ours_train_session(activation_dtype="float32", threads=2, size="small", batch=BATCH,
                       inputs=INPUTS, targets=TARGETS, inter_op_threads=None):
  """A session holding our T5 training step on a constant random batch, initialised:
  (session, train_op, config). The caller closes the session."""
  from t5mtf.models import partitioning, sizes, transformer
  from t5mtf.train import optimizers
  config = sizes.config_for(size, activation_dtype=activation_dtype)
  graph = tf.Graph()
  with graph.as_default():
    step = tf.train.get_or_create_global_step()
    feats = {}
    for k, v in random_batch(batch, inputs, targets).items():
      feats[k] = tf.constant(v)
      feats[k + "_segment_ids"] = tf.ones_like(feats[k])
    mtf_graph, mesh = partitioning.new_mesh()
    model = transformer.T5Model(config, mesh)
    loss, _ = model.loss(partitioning.import_features(mesh, feats), train=True)
    variables = mtf_graph.trainable_variables
    grads = partitioning.ordered_update(mtf.gradients([loss], [v.outputs[0] for v in variables]))
    updates = optimizers.adafactor(optimizers.rsqrt_decay(step)).apply_grads(grads, variables)
    lowering = mtf.Lowering(mtf_graph, {mesh: partitioning.placement_mesh_impl()},
                            autostack=False)
    train_op = tf.group([lowering.lowered_operation(op) for op in updates] +
                        [tf.assign_add(step, 1)])
    proto = session_config(threads)
    if inter_op_threads:
      proto.inter_op_parallelism_threads = inter_op_threads
    sess = tf.Session(graph=graph, config=proto)
    sess.run(tf.global_variables_initializer())
    sess.run(lowering.copy_masters_to_slices())
  return sess, train_op, config


def ours_step_seconds(activation_dtype, steps, threads, size="small", batch=BATCH,
                      inputs=INPUTS, targets=TARGETS):
  sess, train_op, config = ours_train_session(activation_dtype, threads, size, batch, inputs,
                                              targets)
  with sess:
    return common.time_steps(lambda: sess.run(train_op), steps), config


MTF_GIN = """
import mesh_tensorflow.transformer.transformer_layers
encoder/transformer.make_layer_stack.layers = [
    @mesh_tensorflow.transformer.transformer_layers.SelfAttention,
    @mesh_tensorflow.transformer.transformer_layers.DenseReluDense]
decoder/transformer.make_layer_stack.layers = [
    @mesh_tensorflow.transformer.transformer_layers.SelfAttention,
    @mesh_tensorflow.transformer.transformer_layers.EncDecAttention,
    @mesh_tensorflow.transformer.transformer_layers.DenseReluDense]
transformer.make_layer_stack.num_layers = 6
transformer.LayerStack.dropout_rate = 0.1
transformer.LayerStack.norm_epsilon = 1e-6
transformer.Unitransformer.shared_embedding_and_softmax_weights = True
transformer.VocabEmbedding.scale_variable_like_classifier_weights = True
transformer_layers.SelfAttention.num_heads = 8
transformer_layers.SelfAttention.key_value_size = 64
transformer_layers.SelfAttention.relative_attention_type = "bias_shared"
transformer_layers.SelfAttention.dropout_rate = 0.1
transformer_layers.DenseReluDense.hidden_size = 2048
transformer_layers.DenseReluDense.dropout_rate = 0.1
transformer.Unitransformer.d_model = 512
transformer.Unitransformer.max_length = 512
transformer.Unitransformer.positional_embedding = False
"""


def mtf_transformer_step_seconds(steps, threads):
  """mesh_tensorflow.transformer.Bitransformer as the T5 v1 gin configures it."""
  import gin
  from mesh_tensorflow.transformer import transformer as mtf_transformer
  gin.clear_config()
  gin.parse_config(MTF_GIN)
  with tf.Graph().as_default():
    step = tf.train.get_or_create_global_step()
    graph = mtf.Graph()
    mesh = mtf.Mesh(graph, "mesh")
    batch_dim = mtf.Dimension("batch", BATCH)
    data = random_batch()
    inputs = mtf.import_tf_tensor(mesh, tf.constant(data["inputs"]),
                                  mtf.Shape([batch_dim, mtf.Dimension("length", INPUTS)]))
    targets = mtf.import_tf_tensor(mesh, tf.constant(data["targets"]),
                                   mtf.Shape([batch_dim, mtf.Dimension("length", TARGETS)]))
    model = mtf_transformer.make_bitransformer(input_vocab_size=32128,
                                               output_vocab_size=32128)
    _, loss = model.call_simple(inputs=inputs, targets=targets, compute_loss=True)
    variables = graph.trainable_variables
    grads = mtf.gradients([loss], [v.outputs[0] for v in variables])
    lr = tf.math.rsqrt(tf.maximum(tf.cast(step, tf.float32), 10000.0))
    updates = mtf.optimize.AdafactorOptimizer(learning_rate=lr).apply_grads(grads, variables)
    impl = mtf.placement_mesh_impl.PlacementMeshImpl(mtf.Shape([]), mtf.LayoutRules([]), [""])
    lowering = mtf.Lowering(graph, {mesh: impl})
    train_op = tf.group([lowering.lowered_operation(op) for op in updates] +
                        [tf.assign_add(step, 1)])
    with tf.Session(config=session_config(threads)) as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(lowering.copy_masters_to_slices())
      return common.time_steps(lambda: sess.run(train_op), steps)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--steps", type=int, default=3)
  ap.add_argument("--threads", type=int, default=2)
  ap.add_argument("--skip_hf", action="store_true")
  ap.add_argument("--rounds", type=int, default=1, help="run every side this many times, "
                  "interleaved, and report the medians")
  args = ap.parse_args()
  tokens = BATCH * (INPUTS + TARGETS)
  sys.path.insert(0, os.path.join(common.ROOT, "tests"))
  from peers import hf_env
  bf16 = [f for f in common.cpu_flags() if "bf16" in f or f.startswith("amx")]
  if not bf16:  # Emulated bf16 matmuls take many times fp32's: nothing a user would run.
    print("no bf16 instructions on this CPU: the bfloat16 sides are skipped", flush=True)
  runs = {}  # name -> seconds per step, one per round.
  peaks = []  # The fp32 matmul peak measured right after each round's t5mtf fp32 steps.
  for _ in range(args.rounds):  # Rounds interleave the sides: a VM's speed drifts over minutes.
    fp32, config = ours_step_seconds("float32", args.steps, args.threads)
    runs.setdefault("t5mtf fp32", []).append(fp32)
    peaks.append(common.matmul_peak_gflops(threads=args.threads))
    if bf16:
      runs.setdefault("t5mtf bfloat16", []).append(
          ours_step_seconds("bfloat16", args.steps, args.threads)[0])
    runs.setdefault("mesh_tensorflow.transformer fp32", []).append(
        mtf_transformer_step_seconds(args.steps, args.threads))
    for precision in () if args.skip_hf else ("fp32", "bf16_autocast")[:2 if bf16 else 1]:
      runs.setdefault(f"HF transformers {precision}", []).append(float(common.run_peer(
          hf_env.python(), "hf_train_step.py", args.threads, BATCH, INPUTS, TARGETS,
          args.steps, "small", precision)))
  results = {name: float(np.median(seconds)) for name, seconds in runs.items()}
  fp32 = results["t5mtf fp32"]
  if args.rounds > 1:
    print("per round (s/step): " + "; ".join(
        f"{name} {', '.join(f'{x:.2f}' for x in seconds)}" for name, seconds in runs.items()))
  print(f"T5-small training step, batch {BATCH}, inputs {INPUTS}, targets {TARGETS}, "
        f"{common.threads(args.threads)}, median of {args.steps} steps"
        + (f", median of {args.rounds} interleaved rounds" if args.rounds > 1 else ""))
  for name, seconds in results.items():
    print(f"  {name:36s} {seconds:7.2f} s/step  {tokens / seconds:8.0f} tokens/s")
  for other in ("mesh_tensorflow.transformer fp32", "HF transformers fp32",
                "HF transformers bf16_autocast"):
    if other in results:
      print(f"  t5mtf fp32 vs {other}: {results[other] / fp32:.2f}x" + (
          f"; t5mtf bfloat16 vs {other}: {results[other] / results['t5mtf bfloat16']:.2f}x"
          if bf16 else ""))
  print(f"  CPU: {common.cpu_model()}; bf16 instructions: {', '.join(bf16) or 'none'}")
  flops = common.t5_train_flops(config, BATCH, INPUTS, TARGETS)
  # Each round's step against the peak measured beside it: on a shared VM both move together
  # (one session's peak ranged 257-326 GFLOP/s over a minute), so a ratio of two medians taken
  # minutes apart would mostly measure the drift.
  shares = [flops / seconds / 1e9 / peak for seconds, peak in zip(runs["t5mtf fp32"], peaks)]
  print(f"  model FLOPs/step {flops / 1e9:.0f} GFLOP; measured fp32 matmul peak "
        f"{', '.join(f'{p:.0f}' for p in peaks)} GFLOP/s (per round); t5mtf fp32 reaches "
        f"{flops / fp32 / 1e9:.0f} GFLOP/s; per round "
        f"{', '.join(f'{100 * x:.0f}%' for x in shares)} of that round's peak, median "
        f"{100 * float(np.median(shares)):.0f}%")


if __name__ == "__main__":
  main()
