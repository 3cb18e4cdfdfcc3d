"""The Estimator model_fn: builds the mtf graph for a mode, lowers it, returns an EstimatorSpec.

One small function per step: ``_build`` (graph and model) -> ``_train_ops`` / ``_predict_ops``
-> ``_lower`` -> ``_spec``. ``RunSettings`` (in ``t5mtf.train.settings``) carries everything.
"""
import mesh_tensorflow as mtf
import tensorflow.compat.v1 as tf
from tensorflow_estimator.python.estimator import estimator as estimator_lib  # noqa: F401
from tensorflow_estimator.python.estimator.model_fn import EstimatorSpec, ModeKeys

from t5mtf.models import decoding, layout as layout_lib, partitioning, transformer
from t5mtf.train import optimizers, trainable


def model_fn_builder(settings):
  """Returns ``model_fn(features, labels, mode, params)`` for ``settings`` (RunSettings)."""

  def model_fn(features, labels, mode, params=None):
    del labels, params
    graph, mesh = partitioning.new_mesh()
    mtf_features = partitioning.import_features(mesh, features)
    model = transformer.T5Model(settings.model, mesh, einsum_gather=layout_lib.needs_einsum_gather(
        settings.mesh_shape, settings.layout))
    if mode == ModeKeys.TRAIN:
      return _train_spec(settings, graph, mesh, model, mtf_features)
    if mode == ModeKeys.EVAL:
      return _eval_spec(settings, graph, mesh, model, mtf_features)
    return _predict_spec(settings, graph, mesh, model, mtf_features, features)
  return model_fn


def _lowering(settings, graph, mesh):
  impl = partitioning.placement_mesh_impl(settings.mesh_shape, settings.layout)
  # autostack=False keeps one master variable per model variable, named as released.
  return mtf.Lowering(graph, {mesh: impl}, autostack=False)


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
  num_tokens = mtf.maximum(mtf.reduce_sum(transformer.loss_weights(features)), 1.0)
  # Each sequence carries its microbatch's number, so that dropout masks differ between them.
  features = dict(features, microbatch=mtf.floordiv(
      mtf.mtf_range(model.mesh, batch_dim, tf.int32), batch_dim.size // n))

  def microbatch_loss(f):
    model.dropout_salt = mtf.reduce_max(f["microbatch"])
    return {"loss": model.loss(f, train=True, num_tokens=num_tokens)[0]}
  grads, outputs = mtf.serialize_training_step(features, microbatch_loss, batch_dim, n)
  return outputs["loss"], graph.trainable_variables, grads


def _train_spec(settings, graph, mesh, model, features):
  loss, variables, grads = _loss_and_grads(settings, graph, model, features)
  step = tf.train.get_or_create_global_step()
  grads = trainable.gate_gradients(settings, variables, grads, step)
  grads = partitioning.ordered_update(grads)
  lr = optimizers.learning_rate(settings.learning_rate_schedule, step)
  kept = [(g, v) for g, v in zip(grads, variables) if g is not None]
  update_ops = optimizers.adafactor(lr).apply_grads([g for g, _ in kept], [v for _, v in kept])
  lowering = _lowering(settings, graph, mesh)
  tf_loss = tf.cast(lowering.export_to_tf_tensor(loss), tf.float32)
  tf_updates = [lowering.lowered_operation(op) for op in update_ops]
  with tf.control_dependencies(tf_updates):
    train_op = tf.assign_add(step, 1)
  saver = _saver(settings)
  saver_hook = tf.train.CheckpointSaverHook(
      settings.model_dir, save_steps=settings.save_checkpoints_steps, saver=saver,
      listeners=[mtf.MtfCheckpointSaverListener(lowering)])
  tf.summary.scalar("learning_rate", lr)
  tf.summary.scalar("loss", tf_loss)
  return EstimatorSpec(ModeKeys.TRAIN, loss=tf_loss, train_op=train_op,
                       training_chief_hooks=[mtf.MtfRestoreHook(lowering), saver_hook],
                       training_hooks=settings.extra_train_hooks(tf_loss, lr))


def _saver(settings):
  saver = tf.train.Saver(tf.global_variables(), sharded=True,
                         max_to_keep=settings.keep_checkpoint_max or 100_000,
                         keep_checkpoint_every_n_hours=100_000, save_relative_paths=True,
                         defer_build=False)
  tf.add_to_collection(tf.GraphKeys.SAVERS, saver)
  return saver


def _eval_spec(settings, graph, mesh, model, features):
  loss, _ = model.loss(features, train=False)
  lowering = _lowering(settings, graph, mesh)
  tf_loss = tf.cast(lowering.export_to_tf_tensor(loss), tf.float32)
  _saver(settings)
  return EstimatorSpec(ModeKeys.EVAL, loss=tf_loss,
                       evaluation_hooks=[mtf.MtfRestoreHook(lowering)])


def _predict_spec(settings, graph, mesh, model, features, tf_features):
  """Decodes (``settings.predict_kind == "decode"``) or scores (``"score"``), with one model or
  an ensemble of ``settings.ensemble_model_dirs`` (member k's variables under ``member_k/``)."""
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
                                        settings.beam_size, settings.alpha)
    else:
      ids = decoding.greedy_decode(models, inputs, seg, settings.decode_length)
    outputs = {"outputs": ids}
  lowering = _lowering(settings, graph, mesh)
  predictions = {k: lowering.export_to_tf_tensor(v) for k, v in outputs.items()}
  if "input_strings" in tf_features:  # Exported SavedModel: strings in, strings out.
    from t5mtf.data import vocab as vocab_lib
    vocab = vocab_lib.get_default_vocabulary()
    predictions = {"outputs": tf.map_fn(vocab.tf_decode, predictions["outputs"],
                                        fn_output_signature=tf.string)}
  _saver(settings)
  return EstimatorSpec(ModeKeys.PREDICT, predictions=predictions,
                       prediction_hooks=[mtf.MtfRestoreHook(lowering)])
