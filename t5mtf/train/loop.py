"""The run modes: train, finetune, eval, predict, score, export, info (Estimator-based).

Each mode is one short function taking a ``RunSettings``.
"""
import os

import numpy as np
import tensorflow.compat.v1 as tf
from absl import logging
from tensorflow_estimator.python.estimator import estimator as estimator_lib
from tensorflow_estimator.python.estimator import run_config as run_config_lib

from t5mtf.data import input_fn as input_lib
from t5mtf.data import registry
from t5mtf.models import layout as layout_lib
from t5mtf.train import checkpoints, feedback, model_fn as model_fn_lib


def _estimator(settings, warm_start=None):
  config = run_config_lib.RunConfig(
      model_dir=settings.model_dir, save_checkpoints_steps=None, save_checkpoints_secs=None,
      save_summary_steps=settings.log_every_steps, log_step_count_steps=None,
      tf_random_seed=settings.seed, keep_checkpoint_max=settings.keep_checkpoint_max or None)
  return estimator_lib.Estimator(model_fn_lib.model_fn_builder(settings), config=config,
                                 warm_start_from=warm_start)


def _train_input_fn(settings, start_step):
  def input_fn(params=None):
    return input_lib.get_dataset(
        settings.mixture_or_task_name, settings.sequence_length, settings.batch_size,
        split="train", seed=settings.seed, pack=settings.pack,
        decoder_only=settings.model.is_decoder_only, start_step=start_step)
  return input_fn


def train(settings):
  """Trains to ``train_steps``, resuming exactly from the latest checkpoint in model_dir."""
  os.makedirs(settings.model_dir, exist_ok=True)
  checkpoints.check_compatible(settings)
  start = checkpoints.latest_step(settings.model_dir)
  warm = None
  if start == 0 and settings.init_checkpoint:
    warm = checkpoints.warm_start_settings(settings.init_checkpoint)
  if start >= settings.train_steps:
    logging.info("model_dir already at step %d >= train_steps %d", start, settings.train_steps)
    return []
  logging.info("training %s from step %d to %d in %s", settings.mixture_or_task_name, start,
               settings.train_steps, settings.model_dir)
  _estimator(settings, warm).train(_train_input_fn(settings, start),
                                   max_steps=settings.train_steps)
  return feedback.read_curve(settings.model_dir)


def predict_ids(settings, examples, checkpoint_path=None):
  """examples: list of {"inputs": int32 array} -> list of output id arrays (decode or score)."""
  if not examples:
    return []
  est = _estimator(settings)
  batches = _padded_batches(settings, examples)

  def input_fn(params=None):
    return tf.data.Dataset.from_tensor_slices(batches)

  out = []
  for pred in est.predict(input_fn, checkpoint_path=checkpoint_path,
                          yield_single_examples=True):
    out.append(pred["outputs"] if "outputs" in pred else pred["scores"])
  return out[:len(examples)]


def _padded_batches(settings, examples):
  """Pads every example to fixed lengths and the count to a multiple of batch_size."""
  b = settings.batch_size
  n = int(np.ceil(len(examples) / b)) * b
  feats = {}
  for key, length in settings.sequence_length.items():
    if key not in examples[0]:
      continue
    arr = np.zeros((n, length), np.int32)
    for i, ex in enumerate(examples):
      ids = np.asarray(ex[key], np.int32)[:length]
      arr[i, :len(ids)] = ids
    feats[key] = arr
    feats[key + "_segment_ids"] = (arr != 0).astype(np.int32)
    feats[key + "_positions"] = np.where(arr != 0, np.arange(length)[None, :], 0).astype(np.int32)
  return {k: v.reshape(n // b, b, -1) for k, v in feats.items()}


def info(settings):
  """Parameter count from shapes and per-device parameter memory for the configured mesh."""
  c = settings.model
  n = c.num_params()
  split = {d: layout_lib.is_split(d, settings.mesh_shape, settings.layout)
           for d in ("d_ff", "heads", "vocab", "d_model", "d_kv")}
  devices = layout_lib.num_devices(settings.mesh_shape)
  model_axis = _axis_size(settings.mesh_shape, "model")
  # Parameters carrying a split dimension divide by the model axis; the rest are replicated.
  per_device = n if not any(split.values()) else _split_params(c, split) / model_axis + (
      n - _split_params(c, split))
  return {"parameters": n, "devices": devices,
          "parameters_per_device": int(per_device),
          "float32_bytes_per_device": int(per_device) * 4,
          "with_adafactor_slots_bytes_per_device_approx": int(per_device) * 4 * 2}


def _axis_size(mesh_shape, name):
  for d in layout_lib.parse_mesh_shape(mesh_shape).dims:
    if d.name == name:
      return d.size
  return 1


def _split_params(c, split):
  """Parameters whose variables contain a split dimension."""
  d, f, h, k, v = c.d_model, c.d_ff, c.num_heads, c.d_kv, c.vocab_size
  layers_total = c.num_encoder_layers + c.num_decoder_layers
  attn_blocks = c.num_encoder_layers + 2 * c.num_decoder_layers
  count = 0
  if split["heads"]:
    count += attn_blocks * 4 * d * h * k + 2 * h * c.relative_attention_num_buckets
  if split["d_ff"]:
    count += layers_total * (3 if c.ffn_activation == "gated-gelu" else 2) * d * f
  if split["vocab"]:
    count += v * d * (1 if c.tie_embeddings else 2)
  return count


def task_examples(task_name, split, sequence_length, max_examples=0):
  """Tokenized examples of a task's split, in order (with their pretokenized text)."""
  task = registry.get_task(task_name)
  ds = task.get_dataset(sequence_length, split=split, shuffle=False, seed=0)
  if max_examples:
    ds = ds.take(max_examples)
  return list(ds.as_numpy_iterator())
