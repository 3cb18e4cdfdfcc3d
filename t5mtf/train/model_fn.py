"""The Estimator model_fn: builds the mtf graph for a mode, lowers it, returns an EstimatorSpec.

One small function per mode (``_train_spec``, ``_eval_spec``, ``_predict_spec``), each: mtf graph
-> lowering on the mesh implementation -> spec. ``RunSettings`` carries everything. Under a
TPUEstimator on a TPU (``params["context"]`` set) the mesh is a ``SimdMeshImpl`` over the TPU's
cores and the spec a ``TPUEstimatorSpec`` whose summaries go through a host call; otherwise a
``PlacementMeshImpl`` over N logical devices and a plain ``EstimatorSpec``.
"""

import functools

import mesh_tensorflow as mtf
import tensorflow.compat.v1 as tf
from tensorflow_estimator.python.estimator import estimator as estimator_lib  # noqa: F401
from tensorflow_estimator.python.estimator.model_fn import EstimatorSpec, ModeKeys
from tensorflow_estimator.python.estimator.tpu import tpu_estimator

from t5mtf.models import decoding, layout as layout_lib, partitioning, transformer
from t5mtf.train import optimizers, trainable


def model_fn_builder(settings):
  """Returns ``model_fn(features, labels, mode, params)`` for ``settings`` (RunSettings)."""

  def model_fn(features, labels, mode, params=None):
    del labels
    tpu_context = (params or {}).get("context")  # Set by TPUEstimator when running on a TPU.
    run = _Run(settings, tpu_context)
    mtf_features = partitioning.import_features(run.mesh, features)
    model = transformer.T5Model(settings.model, run.mesh, einsum_gather=layout_lib.needs_einsum_gather(
        settings.mesh_shape, settings.layout))
    if mode == ModeKeys.TRAIN:
      return _train_spec(run, model, mtf_features)
    if mode == ModeKeys.EVAL:
      return _eval_spec(run, model, mtf_features)
    return _predict_spec(run, model, mtf_features, features)
  return model_fn


class _Run:
  """The graph, mesh and mesh implementation of one model_fn call."""

  def __init__(self, settings, tpu_context=None):
    self.settings, self.use_tpu = settings, tpu_context is not None
    placer = partitioning.tpu_variable_placer(tpu_context) if self.use_tpu else None
    self.graph, self.mesh = partitioning.new_mesh(placer)
    if self.use_tpu:
      self.impl = partitioning.simd_mesh_impl(settings.mesh_shape, settings.layout,
                                              tpu_context.device_assignment)
    else:
      self.impl = partitioning.placement_mesh_impl(settings.mesh_shape, settings.layout,
                                                   list(settings.mesh_devices) or None)

  def lowering(self):
    # autostack=False keeps one master variable per model variable, named as released.
    return mtf.Lowering(self.graph, {self.mesh: self.impl}, autostack=False)

  def spec(self, mode, hooks=(), summaries=(), **kwargs):
    """EstimatorSpec, or on a TPU a TPUEstimatorSpec with scalar summaries in a host call."""
    if not self.use_tpu:
      for name, value in summaries:
        tf.summary.scalar(name, value)
      key = {ModeKeys.TRAIN: "training_chief_hooks", ModeKeys.EVAL: "evaluation_hooks",
             ModeKeys.PREDICT: "prediction_hooks"}[mode]
      return EstimatorSpec(mode, **kwargs, **{key: list(hooks)})
    for name, value in summaries:
      tf.add_to_collection(mtf.utils.SCALAR_SUMMARIES_COLLECTION_KEY, (name, value))
    host_call = mtf.utils.create_host_call(self.settings.model_dir) if summaries else None
    mtf.utils.remove_summaries()
    key = {ModeKeys.TRAIN: "training_hooks", ModeKeys.EVAL: "evaluation_hooks",
           ModeKeys.PREDICT: "prediction_hooks"}[mode]
    return tpu_estimator.TPUEstimatorSpec(mode, host_call=host_call, **kwargs,
                                          **{key: list(hooks)})


def _loss_and_grads(settings, graph, model, features):
  """The batch's loss and gradients; with ``num_microbatches`` > 1, summed over microbatches run
  one after another (mtf.serialize_training_step), so activation memory is that of one of them."""
  n = settings.num_microbatches
  if n <= 1:
    loss, _ = model.loss(features, train=True)
    variables = graph.trainable_variables
    return loss, variables, mtf.gradients([loss], [v.outputs[0] for v in variables])
  batch_dim = features["targets"].shape.dims[0]
  if batch_dim.size % n:
    raise ValueError(f"RunSettings.num_microbatches={n} must divide the batch size "
                     f"{batch_dim.size}")
  if settings.model.loss_normalization == "tokens":
    raise ValueError("RunSettings.num_microbatches > 1 needs ModelConfig.loss_normalization="
                     "'positions' (each microbatch divides by the whole batch's positions)")
  # Each sequence carries its microbatch's number, so that dropout masks differ between them.
  features = dict(features, microbatch=mtf.floordiv(
      mtf.mtf_range(model.mesh, batch_dim, tf.int32), batch_dim.size // n))

  def microbatch_loss(f):
    model.dropout_salt = mtf.reduce_max(f["microbatch"])
    return {"loss": model.loss(f, train=True, num_microbatches=n)[0]}
  grads, outputs = _serialize_training_step(features, microbatch_loss, batch_dim, n)
  return outputs["loss"], graph.trainable_variables, grads


def _serialize_training_step(features, loss_fn, batch_dim, n):
  """mtf.serialize_training_step, its loop running one microbatch at a time. Its tf.while_loop
  keeps the default parallel_iterations=10, so TensorFlow ran the microbatches side by side
  and kept all their activations (measured: 4 microbatches saved no memory); mtf offers no
  argument for it, so its while_loop is given one while the step is built."""
  original = mtf.ops.while_loop
  mtf.ops.while_loop = functools.partial(original, parallel_iterations=1)
  try:
    return mtf.serialize_training_step(features, loss_fn, batch_dim, n)
  finally:
    mtf.ops.while_loop = original


def _train_spec(run, model, features):
  settings, graph = run.settings, run.graph
  loss, variables, grads = _loss_and_grads(settings, graph, model, features)
  step = tf.train.get_or_create_global_step()
  grads = trainable.gate_gradients(settings, variables, grads, step)
  if run.impl.supports_control_dependencies:  # XLA on a TPU orders reads and writes itself.
    grads = partitioning.ordered_update(grads)
  lr = optimizers.learning_rate(settings.learning_rate_schedule, step)
  kept = [(g, v) for g, v in zip(grads, variables) if g is not None]
  update_ops = optimizers.adafactor(lr).apply_grads([g for g, _ in kept], [v for _, v in kept])
  lowering = run.lowering()
  tf_loss = tf.cast(lowering.export_to_tf_tensor(loss), tf.float32)
  tf_updates = [lowering.lowered_operation(op) for op in update_ops]
  with tf.control_dependencies(tf_updates):
    train_op = tf.assign_add(step, 1)
  with mtf.utils.outside_all_rewrites():
    saver = _saver(settings)
    saver_hook = _NoRewriteSaverHook(
        settings.model_dir, save_steps=settings.save_checkpoints_steps, saver=saver,
        listeners=[mtf.MtfCheckpointSaverListener(lowering)])
    hooks = [mtf.MtfRestoreHook(lowering), saver_hook]
  # On a TPU the loss lives on the device: TPUEstimator logs it, our progress hook cannot.
  # Elsewhere it runs first, so that a step's loss is on the curve before its checkpoint is
  # written (a kill during the save then loses nothing) and a NaN stops before any save.
  if not run.use_tpu:
    hooks = settings.extra_train_hooks(tf_loss, lr) + hooks
  return run.spec(ModeKeys.TRAIN, hooks, [("learning_rate", lr), ("loss", tf_loss)],
                  loss=tf_loss, train_op=train_op)


class _NoRewriteSaverHook(tf.train.CheckpointSaverHook):
  """Saves like CheckpointSaverHook, except the save at session start when the checkpoint of
  the current step already exists: a resumed run never rewrites the checkpoint it restored
  (a kill during that rewrite left a 0-byte index marked latest)."""

  def after_create_session(self, session, coord):
    step = session.run(self._global_step_tensor)
    latest = tf.train.latest_checkpoint(self._checkpoint_dir)
    if latest and latest.endswith(f"-{step}") and tf.io.gfile.exists(latest + ".index"):
      self._timer.update_last_triggered_step(step)
      return
    super().after_create_session(session, coord)


def _saver(settings):
  saver = tf.train.Saver(tf.global_variables(), sharded=True,
                         max_to_keep=settings.keep_checkpoint_max or 100_000,
                         keep_checkpoint_every_n_hours=100_000, save_relative_paths=True,
                         defer_build=False)
  tf.add_to_collection(tf.GraphKeys.SAVERS, saver)
  return saver


def _eval_spec(run, model, features):
  loss, _ = model.loss(features, train=False)
  lowering = run.lowering()
  tf_loss = tf.cast(lowering.export_to_tf_tensor(loss), tf.float32)
  with mtf.utils.outside_all_rewrites():
    _saver(run.settings)
  return run.spec(ModeKeys.EVAL, [mtf.MtfRestoreHook(lowering)], loss=tf_loss)


def _predict_spec(run, model, features, tf_features):
  """Decodes (``settings.predict_kind == "decode"``) or scores (``"score"``), with one model or
  an ensemble of ``settings.ensemble_model_dirs`` (member k's variables under ``member_k/``)."""
  settings, mesh = run.settings, run.mesh
  models = [transformer.T5Model(settings.model, mesh, model.einsum_gather, f"member_{k}/")
            for k in range(len(settings.ensemble_model_dirs))] or model
  if settings.predict_kind == "score":
    if settings.ensemble_model_dirs:
      token_ll = transformer.ensemble_token_log_likelihood(models, features)
    else:
      _, token_ll = model.loss(features, train=False)
    outputs = {"scores": mtf.reduce_sum(token_ll, reduced_dim=token_ll.shape.dims[-1])}
  else:
    inputs, seg = features["inputs"], features["inputs_segment_ids"]
    if settings.model.is_decoder_only:
      ids = decoding.greedy_decode_decoder_only(models, inputs, settings.decode_length)
    elif settings.beam_size > 1:
      ids = decoding.beam_search_decode(models, inputs, seg, settings.decode_length,
                                        settings.beam_size, settings.alpha,
                                        settings.beam_search, settings.layout,
                                        settings.mesh_shape)
    else:
      ids = decoding.greedy_decode(models, inputs, seg, settings.decode_length)
    outputs = {"outputs": ids}
  lowering = run.lowering()
  predictions = {k: lowering.export_to_tf_tensor(v) for k, v in outputs.items()}
  if "input_strings" in tf_features:  # Exported SavedModel: strings in, strings out.
    from t5mtf.data import vocab as vocab_lib
    vocab = vocab_lib.get_default_vocabulary()
    predictions = {"outputs": tf.map_fn(vocab.tf_decode, predictions["outputs"],
                                        fn_output_signature=tf.string)}
  with mtf.utils.outside_all_rewrites():
    _saver(settings)
  return run.spec(ModeKeys.PREDICT, [mtf.MtfRestoreHook(lowering)], predictions=predictions)
