"""Checkpoints in model_dir: the latest step, a shape check before restoring, warm starts.

A released T5 checkpoint (with or without AdaFactor slots ``_slot_vr``/``_slot_vc``/``_slot_v``)
restores directly: our variables carry the released names and shapes.
"""
import re

import tensorflow.compat.v1 as tf
from tensorflow_estimator.python.estimator import estimator as estimator_lib

from t5mtf.models import variables as variables_lib


class CheckpointMismatchError(ValueError):
  pass


def resolve(path):
  """A checkpoint prefix from a checkpoint prefix or a directory holding checkpoints."""
  if tf.io.gfile.isdir(path):
    latest = tf.train.latest_checkpoint(path)
    if latest is None:
      raise FileNotFoundError(f"no checkpoint in directory {path}")
    return latest
  if not tf.io.gfile.glob(path + ".index") and not tf.io.gfile.glob(path + "*"):
    raise FileNotFoundError(f"no checkpoint at {path}")
  return path


def latest_step(model_dir):
  latest = tf.train.latest_checkpoint(model_dir) if tf.io.gfile.isdir(model_dir) else None
  if latest is None:
    return 0
  return int(tf.train.load_variable(latest, "global_step"))


def read_shapes(path):
  try:
    return dict(tf.train.list_variables(path))
  except (tf.errors.OpError, ValueError) as e:
    raise CheckpointMismatchError(f"{path} is not a readable TF checkpoint: {e}") from None


def check_shapes(path, config, new_ok=lambda name: False):
  """Raises CheckpointMismatchError naming the first variable whose shape differs, or the
  model variables the checkpoint lacks (except those ``new_ok`` accepts as new)."""
  found = read_shapes(path)
  expected = variables_lib.expected_shapes(config)
  for name, shape in expected.items():
    if name in found and list(found[name]) != list(shape):
      raise CheckpointMismatchError(
          f"checkpoint {path}: variable {name} has shape {list(found[name])}, the configured "
          f"model expects {shape} (check the model gin file: d_model, d_ff, heads, ...)")
  missing = [n for n in expected if n not in found and not new_ok(n)]
  if missing:
    raise CheckpointMismatchError(
        f"checkpoint {path} lacks {len(missing)} model variable(s), e.g. {missing[:3]}; "
        "is it a checkpoint of another architecture?")
  return found


def check_compatible(settings):
  """Before training in a model_dir that already holds a checkpoint."""
  latest = tf.train.latest_checkpoint(settings.model_dir)
  if latest:
    check_shapes(latest, settings.model)
  if settings.init_checkpoint:
    # Fine-tuning may add adapter layers (§3.5.1) the pre-trained checkpoint lacks.
    check_shapes(resolve(settings.init_checkpoint), settings.model,
                 new_ok=lambda name: "/adapter/" in name)


def warm_start_settings(init_checkpoint):
  """Initialise every variable the checkpoint has (model and optimizer slots), except the step."""
  path = resolve(init_checkpoint)
  names = [n for n in read_shapes(path) if n != "global_step"]
  return estimator_lib.WarmStartSettings(
      ckpt_to_initialize_from=path,
      # Matched against graph names, which end in ":0".
      vars_to_warm_start=["^" + re.escape(n) + "(:0)?$" for n in names])


def roll_back_before(model_dir, step):
  """Makes the latest checkpoint the last one *before* ``step`` (e.g. the step whose weights gave
  a NaN loss). Later checkpoint files stay on disk, just no longer "latest"."""
  state = tf.train.get_checkpoint_state(model_dir)
  if state is None:
    return 0
  paths = [p for p in state.all_model_checkpoint_paths if int(p.rsplit("-", 1)[1]) < step]
  if not paths:
    return 0
  tf.train.update_checkpoint_state(model_dir, paths[-1], all_model_checkpoint_paths=paths)
  return int(paths[-1].rsplit("-", 1)[1])
