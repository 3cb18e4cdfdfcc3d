"""Runs inside the original t5 venv: one training step (or ``steps``) of the released code path
(mesh_tensorflow.transformer.utils.tpu_estimator_model_fn with a model from t5's own gin files,
AdaFactor as released) on a given batch. Imported by t5_oracle.py for {"op": "train_step"}.

Writes the randomly initialised weights (``init_dir``, a TF checkpoint with released names)
before the step and returns the loss (each step's in ``losses``) and every master variable after
the steps (``after.npz``), and leaves ``model_dir`` as the released training loop would.
"""
import os

import gin
import mesh_tensorflow as mtf
import numpy as np
import tensorflow.compat.v1 as tf
from mesh_tensorflow.transformer import utils


def train_step(job):
  out_dir = job["out_dir"]
  for sub in ("init", "model_dir"):
    os.makedirs(os.path.join(out_dir, sub), exist_ok=True)
  gin.clear_config()
  gin.add_config_file_search_path(os.path.join(os.path.dirname(__import__("t5").__file__),
                                               "models", "gin"))
  defaults = os.path.join(os.path.dirname(utils.__file__), "gin", "defaults.gin")
  gin.parse_config_files_and_bindings([defaults, job["gin_file"]], job["gin_bindings"])
  vocab = job["vocab_size"]
  batch = {k: np.asarray(v, np.int32) for k, v in job["batch"].items()}
  model_type = job.get("model_type", "bitransformer")  # "lm": a Unitransformer on targets.
  lengths = {k: batch[k].shape[1] for k in ("inputs", "targets") if k in batch}
  with tf.Graph().as_default():
    tf.set_random_seed(job.get("seed", 0))
    tf.train.get_or_create_global_step()
    model = utils.build_model(model_type=model_type, input_vocab_size=vocab,
                              output_vocab_size=vocab, layout_rules=mtf.convert_to_layout_rules(
                                  ""), mesh_shape=mtf.convert_to_shape(""))
    model_fn = utils.tpu_estimator_model_fn(
        model_type=model_type, transformer_model=model, vocabulary=None,
        model_dir=os.path.join(out_dir, "model"), use_tpu=False, mesh_shape=mtf.convert_to_shape(""),
        layout_rules=mtf.convert_to_layout_rules(""),
        batch_size=batch["targets"].shape[0], sequence_length=lengths, autostack=False,
        keep_checkpoint_max=None, save_checkpoints_steps=10**9,
        learning_rate_schedule=job["learning_rate"], optimizer=mtf.optimize.AdafactorOptimizer)
    features = {k: tf.constant(v) for k, v in batch.items()}
    spec = model_fn(features, None, tf.estimator.ModeKeys.TRAIN, {})
    restore = [h for h in spec.training_chief_hooks if isinstance(h, mtf.MtfRestoreHook)][0]
    lowering = restore._lowering
    masters = [v for v in tf.global_variables() if "global_step" not in v.name]
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      tf.train.Saver(masters).save(sess, os.path.join(out_dir, "init", "model.ckpt"))
      sess.run(lowering.copy_masters_to_slices())
      losses = [sess.run([spec.train_op, spec.loss])[1] for _ in range(job.get("steps", 1))]
      sess.run(lowering.copy_slices_to_masters())
      values = {v.op.name: sess.run(v) for v in masters}
      # A model_dir as the released training loop leaves it (its saver: every global variable,
      # global_step included, in the configured master dtype).
      tf.train.Saver(tf.global_variables(), sharded=True).save(
          sess, os.path.join(out_dir, "model_dir", "model.ckpt"), global_step=len(losses))
  np.savez(os.path.join(out_dir, "after.npz"),
           **{k: np.asarray(v, np.float32) for k, v in values.items()})
  return {"loss": float(losses[0]), "losses": [float(x) for x in losses],
          "init": os.path.join(out_dir, "init", "model.ckpt"),
          "after": os.path.join(out_dir, "after.npz"),
          "model_dir": os.path.join(out_dir, "model_dir")}


def decode(job):
  """The released predict path (tpu_estimator_model_fn, Bitransformer.decode with the given
  beam size and alpha) on ``inputs`` ids, weights from ``checkpoint``; -> decoded strings.
  With ``targets`` ids: the released scoring (score_in_predict_mode: the log-likelihood of each
  row's targets given its inputs) -> one float per row."""
  import seqio
  gin.clear_config()
  gin.add_config_file_search_path(os.path.join(os.path.dirname(__import__("t5").__file__),
                                               "models", "gin"))
  defaults = os.path.join(os.path.dirname(utils.__file__), "gin", "defaults.gin")
  gin.parse_config_files_and_bindings([defaults, job["gin_file"]], job["gin_bindings"] + [
      f"Bitransformer.decode.beam_size = {job['beam_size']}",
      f"Bitransformer.decode.alpha = {job['alpha']}"])
  inputs = np.asarray(job["inputs"], np.int32)
  targets = np.asarray(job["targets"], np.int32) if "targets" in job else None
  vocab = seqio.SentencePieceVocabulary(os.environ["T5MTF_SPM_PATH"], 100)
  with tf.Graph().as_default():
    tf.train.get_or_create_global_step()
    shape, rules = mtf.convert_to_shape(""), mtf.convert_to_layout_rules("")
    model = utils.build_model(model_type="bitransformer", input_vocab_size=job["vocab_size"],
                              output_vocab_size=job["vocab_size"], layout_rules=rules,
                              mesh_shape=shape)
    model_fn = utils.tpu_estimator_model_fn(
        model_type="bitransformer", transformer_model=model, vocabulary=vocab,
        model_dir=job["out_dir"], use_tpu=False, mesh_shape=shape, layout_rules=rules,
        batch_size=inputs.shape[0], sequence_length={
            "inputs": inputs.shape[1],
            "targets": inputs.shape[1] if targets is None else targets.shape[1]},
        autostack=False, keep_checkpoint_max=None, save_checkpoints_steps=10**9,
        score_in_predict_mode=targets is not None)
    features = {"inputs": tf.constant(inputs)}
    if targets is not None:
      features["targets"] = tf.constant(targets)
    spec = model_fn(features, None, tf.estimator.ModeKeys.PREDICT, {})
    restore = [h for h in spec.prediction_hooks if isinstance(h, mtf.MtfRestoreHook)][0]
    names = {n for n, _ in tf.train.list_variables(job["checkpoint"])}
    masters = [v for v in tf.global_variables() if v.op.name in names]
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      tf.train.Saver(masters).restore(sess, job["checkpoint"])
      sess.run(restore._lowering.copy_masters_to_slices())
      if targets is not None:
        return [float(x) for x in sess.run(spec.predictions["scores"])]
      outputs = sess.run(spec.predictions["outputs"])
  return [o.decode("utf-8") for o in outputs]
