"""Checkpoints in model_dir: the latest step, a shape check before restoring, warm starts.

A released T5 checkpoint (with or without AdaFactor slots ``_slot_vr``/``_slot_vc``/``_slot_v``)
restores directly: our variables carry the released names and shapes.
"""
import json
import os
import re
import shutil

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


def alternative_name(name):
  """The same variable in the other release's naming (T5 1.0 ``layer_norm`` / ``final_layer_norm``
  vs T5.1.1 ``rms_norm``), or None."""
  if "/final_layer_norm/" in name:
    return name.replace("/final_layer_norm/", "/rms_norm/")
  if "/layer_norm/" in name:
    return name.replace("/layer_norm/", "/rms_norm/")
  if name.endswith("/rms_norm/scale") and "/block_" not in name:
    return name.replace("/rms_norm/", "/final_layer_norm/")
  if "/rms_norm/" in name:
    return name.replace("/rms_norm/", "/layer_norm/")
  return None


def name_in_checkpoint(name, found):
  """``name`` or its other-release spelling, whichever the checkpoint has (else None)."""
  if name in found:
    return name
  alt = alternative_name(name)
  return alt if alt in found else None


def check_shapes(path, config, new_ok=lambda name: False):
  """Raises CheckpointMismatchError naming the first variable whose shape differs, or the
  model variables the checkpoint lacks (except those ``new_ok`` accepts as new)."""
  found = read_shapes(path)
  expected = variables_lib.expected_shapes(config)
  for name, shape in expected.items():
    stored = name_in_checkpoint(name, found)
    if stored and list(found[stored]) != list(shape):
      raise CheckpointMismatchError(
          f"checkpoint {path}: variable {stored} has shape {list(found[stored])}, the "
          f"configured model expects {shape} (check the model gin file: d_model, d_ff, heads, "
          "...)")
  missing = [n for n in expected if not name_in_checkpoint(n, found) and not new_ok(n)]
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


def warm_start_settings(init_checkpoint, config):
  """Initialise every model variable (and optimizer slot) the checkpoint has, except the step;
  either release's norm names are accepted (T5 1.0 ``layer_norm``, T5.1.1 ``rms_norm``)."""
  path = resolve(init_checkpoint)
  found = read_shapes(path)
  renamed = {}
  for name in variables_lib.expected_shapes(config):
    stored = name_in_checkpoint(name, found)
    if stored and stored != name:
      renamed[name] = stored
      for slot in ("_slot_v", "_slot_vr", "_slot_vc"):
        if stored + slot in found:
          renamed[name + slot] = stored + slot
  ours = set(renamed.values())
  names = [n for n in found if n != "global_step" and n not in ours] + list(renamed)
  return estimator_lib.WarmStartSettings(
      ckpt_to_initialize_from=path,
      # Matched against graph names, which end in ":0".
      vars_to_warm_start=["^" + re.escape(n) + "(:0)?$" for n in names],
      var_name_to_prev_var_name=renamed)


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


def ensemble_checkpoint(settings):
  """The latest weights of each of ``settings.ensemble_model_dirs`` in one checkpoint, member k's
  variables under ``member_k/`` (how the ensemble model names them), in ``model_dir/ensemble``.
  Rebuilt when a member has a newer checkpoint; members are only read."""
  members = [resolve(d) for d in settings.ensemble_model_dirs]
  out = os.path.join(settings.model_dir, "ensemble")
  manifest = os.path.join(out, "members.json")
  if os.path.exists(manifest):
    with open(manifest) as f:
      if json.load(f) == members:
        return out
  if os.path.exists(out):
    shutil.rmtree(out)  # Derived from the members only: safe to rebuild.
  from t5mtf import convert
  arrays = {}
  for k, path in enumerate(members):
    check_shapes(path, settings.model)
    for name, value in convert.read_checkpoint(path, settings.model).items():
      arrays[f"member_{k}/{name}"] = value
  convert.write_checkpoint(arrays, out)
  with open(manifest, "w") as f:
    json.dump(members, f)
  return out
