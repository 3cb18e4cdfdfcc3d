"""Checkpoints: the one place that reads and writes them. The latest step, a shape check before
restoring, warm starts, arrays in and out, and a readable copy of any checkpoint.

A released T5 checkpoint (with or without AdaFactor slots ``_slot_vr``/``_slot_vc``/``_slot_v``)
restores in every mode: our variables carry the released names and shapes; a checkpoint stored
in another dtype (the released code stores bfloat16 by default) or with the other release's norm
names is first copied, converted, into a cache (``readable``) and restored from there.
"""
import hashlib
import json
import os
import re
import shutil

import numpy as np
import tensorflow.compat.v1 as tf
from tensorflow_estimator.python.estimator import estimator as estimator_lib

from t5mtf import atomic
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


_CHECKPOINT_INDEX = re.compile(r"^model\.ckpt-(\d+)\.index$")


def steps_on_disk(model_dir):
  """{step: prefix} of the model.ckpt-<step> checkpoints whose index files are in model_dir."""
  names = os.listdir(model_dir) if os.path.isdir(model_dir) else []
  return {int(m.group(1)): os.path.join(model_dir, n[:-len(".index")])
          for n in names for m in [_CHECKPOINT_INDEX.match(n)] if m}


def lost_steps(model_dir):
  """The steps on disk (sorted) when model_dir's ``checkpoint`` state file leads to none of
  them (missing, unreadable, or naming files that are gone), else []. TensorFlow then sees no
  checkpoint: training would start again at step 0 and write over them. Step 0 alone is a run
  killed in its first save (the state file comes last): starting over loses nothing."""
  steps = steps_on_disk(model_dir)
  if not steps or max(steps) == 0 or tf.train.latest_checkpoint(model_dir):
    return []
  return sorted(steps)


def check_state(model_dir, fix):
  """Raises a ValueError naming the checkpoints on disk if ``lost_steps``; ``fix`` says which
  flag picks one."""
  steps = lost_steps(model_dir)
  if steps:
    raise ValueError(f"{model_dir}: its 'checkpoint' file is missing, unreadable or names "
                     f"files that are gone, but checkpoints of steps {steps} are on disk; "
                     f"{fix.format(step=steps[-1])}")


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
  check_state(settings.model_dir, "continue from one with --resume_from_step (e.g. "
                                  "--resume_from_step={step}), which rewrites that file")
  latest = tf.train.latest_checkpoint(settings.model_dir)
  if latest:
    check_shapes(latest, settings.model)
    check_whole(latest, settings.model_dir, training=True)
  if settings.init_checkpoint:
    # Fine-tuning may add adapter layers (§3.5.1) the pre-trained checkpoint lacks.
    check_shapes(resolve(settings.init_checkpoint), settings.model,
                 new_ok=lambda name: "/adapter/" in name)


def warm_start_settings(init_checkpoint, config):
  """Initialise every model variable (and optimizer slot) the checkpoint has, except the step;
  a checkpoint in another dtype or naming is read through its converted copy (``readable``)."""
  path = readable(init_checkpoint, config)
  names = [n for n, _ in tf.train.list_variables(path) if n != "global_step"]
  return estimator_lib.WarmStartSettings(
      ckpt_to_initialize_from=path,
      # Matched against graph names, which end in ":0".
      vars_to_warm_start=["^" + re.escape(n) + "(:0)?$" for n in names])


def roll_back_before(model_dir, step):
  """Makes the latest checkpoint the last one *before* ``step`` (e.g. the step whose weights gave
  a NaN loss). Later checkpoint files stay on disk, just no longer "latest". A state file that
  leads nowhere (``lost_steps``) is rebuilt from the checkpoints on disk."""
  if lost_steps(model_dir):
    found = steps_on_disk(model_dir)
    paths = [found[s] for s in sorted(found) if s < step]
  else:
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
  arrays = {}
  for k, path in enumerate(members):
    check_shapes(path, settings.model)
    for name, value in read_checkpoint(path, settings.model).items():
      arrays[f"member_{k}/{name}"] = np.asarray(value, master_dtype(settings.model))
  write_checkpoint(arrays, out)
  with open(manifest, "w") as f:
    json.dump(members, f)
  return out


# -- arrays in and out ------------------------------------------------------------------------


def master_dtype(config):
  return np.float32 if config.master_dtype == "float32" else tf.bfloat16.as_numpy_dtype


def read_checkpoint(path, c=None):
  """Model variables of a TF checkpoint (file prefix or directory) -> {name: array}, named as
  ``c`` names them (either release's norm names are read) when a config is given."""
  path = resolve(path)
  found = dict(tf.train.list_variables(path))
  if c is None:
    return {n: tf.train.load_variable(path, n) for n in found
            if n != "global_step" and "_slot_" not in n}
  out = {}
  for name in variables_lib.expected_shapes(c):
    stored = name_in_checkpoint(name, found)
    if stored:
      out[name] = tf.train.load_variable(path, stored)
  return out


def write_checkpoint(arrays, out_dir, step=0, extra_files=None, prefix="model.ckpt"):
  """A TF checkpoint with exactly these variables (+ global_step), written into a staging
  folder and renamed to ``out_dir`` on success only; ``extra_files`` {name: text}."""
  with staging(out_dir) as tmp:
    _save(arrays, os.path.join(tmp, prefix), step)
    for name, text in (extra_files or {}).items():
      with open(os.path.join(tmp, name), "w") as f:
        f.write(text)


def _save(arrays, prefix, step):
  graph = tf.Graph()
  with graph.as_default():
    variables = [tf.Variable(v, name=n) for n, v in sorted(arrays.items())
                 if n != "global_step"]
    step_var = tf.Variable(np.int64(step), name="global_step")
    saver = tf.train.Saver(variables + [step_var], save_relative_paths=True)
    with tf.Session(graph=graph) as sess:
      sess.run(tf.global_variables_initializer())
      return saver.save(sess, prefix, global_step=step, write_meta_graph=False)


class OutputExistsError(ValueError):
  pass


class staging:
  """Writes into ``<out_dir>.tmp-<pid>`` (``atomic.staging_dir``: mode from the umask, a dead
  writer's leftovers removed), renamed to ``out_dir`` on success only."""

  def __init__(self, out_dir):
    self.out_dir = os.path.abspath(out_dir)

  def __enter__(self):
    if os.path.exists(self.out_dir) and os.listdir(self.out_dir):
      raise OutputExistsError(f"{self.out_dir} exists and is not empty; choose a new folder")
    self.tmp = atomic.staging_dir(self.out_dir)
    return self.tmp

  def __exit__(self, exc_type, exc, tb):
    if exc_type is not None:
      shutil.rmtree(self.tmp, ignore_errors=True)
      return False
    if os.path.isdir(self.out_dir):
      os.rmdir(self.out_dir)
    os.replace(self.tmp, self.out_dir)
    return False


# -- any stored dtype, either release's names ---------------------------------------------------


def conversions(path, config):
  """{stored name: (our name, dtype our graph restores)} for the variables that need renaming
  or casting (model weights to the configured master dtype, slots to float32); empty when the
  checkpoint restores as it is."""
  reader = tf.train.load_checkpoint(path)
  dtypes = reader.get_variable_to_dtype_map()
  master = tf.as_dtype(config.master_dtype)
  todo = {}
  for name in variables_lib.expected_shapes(config):
    stored = name_in_checkpoint(name, dtypes)
    if stored is None:
      continue
    for slot in ("", "_slot_v", "_slot_vr", "_slot_vc"):
      if stored + slot not in dtypes:
        continue
      want = master if not slot else tf.float32
      if stored != name or dtypes[stored + slot] != want:
        todo[stored + slot] = (name + slot, want)
  return todo


def readable(path, config, cache_dir=None):
  """``path`` if it restores into ``config``'s graph as it is; otherwise a converted copy
  (renamed, cast) under ``cache_dir`` (default ~/.cache/t5mtf/converted), made once per
  checkpoint file. Shapes are checked first, naming the first wrong variable."""
  path = resolve(path)
  check_shapes(path, config, new_ok=lambda name: "/adapter/" in name)
  check_whole(path, os.path.dirname(path))
  todo = conversions(path, config)
  if not todo:
    return path
  step = int(tf.train.load_variable(path, "global_step")) \
      if "global_step" in dict(tf.train.list_variables(path)) else 0
  index = path + ".index"
  key = hashlib.sha1(f"{os.path.abspath(path)}:{os.path.getmtime(index) if os.path.exists(index) else 0}:"
                     f"{config.master_dtype}".encode()).hexdigest()[:16]
  root = cache_dir or os.environ.get("T5MTF_CACHE", os.path.expanduser("~/.cache/t5mtf"))
  out_dir = os.path.join(root, "converted", key)
  prefix = os.path.join(out_dir, f"model.ckpt-{step}")
  if not tf.io.gfile.exists(prefix + ".index"):
    if os.path.isdir(out_dir):
      shutil.rmtree(out_dir)  # A half-written copy from a killed run: derived, safe to redo.
    write_checkpoint(_converted(path, todo), out_dir, step)
  return prefix


def _converted(path, todo):
  arrays = {}
  for name, _ in tf.train.list_variables(path):
    value = tf.train.load_variable(path, name)
    new_name, dtype = todo.get(name, (name, None))
    arrays[new_name] = np.asarray(value, dtype.as_numpy_dtype) if dtype else value
  return arrays


def make_resumable(model_dir, config):
  """If model_dir's latest checkpoint does not restore as it is (another dtype or naming, e.g.
  written by the released code), adds a converted copy ``converted.ckpt-<step>`` beside it and
  makes that the latest; the original files are left as they are. Returns the new path or
  None."""
  latest = tf.train.latest_checkpoint(model_dir)
  if not latest:
    return None
  todo = conversions(latest, config)
  if not todo:
    return None
  step = int(tf.train.load_variable(latest, "global_step"))
  prefix = os.path.join(model_dir, f"converted.ckpt-{step}")
  if not tf.io.gfile.exists(prefix + ".index"):
    _save(_converted(latest, todo), os.path.join(model_dir, "converted.ckpt"), step)
  state = tf.train.get_checkpoint_state(model_dir)
  paths = [p for p in state.all_model_checkpoint_paths if p != prefix] + [prefix]
  tf.train.update_checkpoint_state(model_dir, prefix, all_model_checkpoint_paths=paths)
  return prefix


# -- damaged checkpoints --------------------------------------------------------------------------

READ_ERRORS = (tf.errors.DataLossError, tf.errors.OutOfRangeError)


def fully_readable(path):
  """Reads every tensor of a checkpoint (the only sure test that its data files are whole)."""
  try:
    reader = tf.train.load_checkpoint(path)
    for name in reader.get_variable_to_shape_map():
      reader.get_tensor(name)
    return True
  except (tf.errors.OpError, ValueError):
    return False


def check_whole(path, model_dir=None, training=False):
  """Raises ``unreadable`` if the data files hold fewer bytes than the index's tensors need
  (a truncated copy or a killed write): a cheap test, no tensor is read."""
  try:
    reader = tf.train.load_checkpoint(path)
  except (tf.errors.OpError, ValueError) as e:
    raise unreadable(path, e, model_dir, training) from None
  shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
  need = 0
  for name, shape in shapes.items():
    if dtypes[name] == tf.string:
      return  # Variable-length entries: sizes cannot be known from shapes.
    need += int(np.prod(shape, dtype=np.int64)) * dtypes[name].size
  have = sum(tf.io.gfile.stat(f).length for f in tf.io.gfile.glob(path + ".data-*"))
  if have < need:
    raise unreadable(path, ValueError(f"its data files hold {have:,} bytes, the index needs "
                                      f"{need:,}"), model_dir, training)


def _step_of(path):
  tail = path.rsplit("-", 1)[-1]
  return int(tail) if tail.isdigit() else -1


def unreadable(path, error, model_dir=None, training=False):
  """A CheckpointMismatchError naming the damaged checkpoint's files and the newest older
  checkpoint in model_dir that reads whole, with how to use it."""
  lines = [l.strip() for l in str(getattr(error, "message", error)).splitlines()]
  lines = [l for l in lines if l and not l.startswith(("Graph execution error", "Detected at",
                                                         "File ", "[[", "Original stack"))]
  first = lines[0] if lines else type(error).__name__
  if "Read less bytes than requested" in str(error):
    first = "a data file is shorter than its index says"
  msg = (f"checkpoint {path} cannot be read ({first}): its files "
         f"({os.path.basename(path)}.index/.data-*) are truncated or damaged")
  state = tf.train.get_checkpoint_state(model_dir) if model_dir else None
  older = sorted((p for p in (state.all_model_checkpoint_paths if state else [])
                  if _step_of(p) < _step_of(path)), key=_step_of, reverse=True)
  good = next((p for p in older if fully_readable(p)), None)
  if good is None:
    return CheckpointMismatchError(msg + "; no older checkpoint in the model_dir reads whole")
  step = _step_of(good)
  how = (f"rerun with --resume_from_step={step} to continue from it" if training else
         f"use --checkpoint_steps={step}")
  return CheckpointMismatchError(msg + f"; the older checkpoint {good} (step {step}) reads "
                                 f"whole: {how}")
