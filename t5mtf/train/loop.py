"""The run modes: train, finetune, eval, predict, score, export, info (Estimator-based).

Each mode is one short function taking a ``RunSettings``.
"""
import os

import numpy as np
import tensorflow.compat.v1 as tf
from absl import logging
from tensorflow_estimator.python.estimator import estimator as estimator_lib
from tensorflow_estimator.python.estimator import run_config as run_config_lib

from t5mtf import atomic
from t5mtf.data import input_fn as input_lib
from t5mtf.data import registry
from t5mtf.models import config as config_lib
from t5mtf.models import layout as layout_lib
from t5mtf.train import checkpoints, cluster as cluster_lib, feedback, lock as lock_lib
from t5mtf.train import model_fn as model_fn_lib


def _estimator(settings, warm_start=None):
  if settings.tpu:
    return _tpu_estimator(settings, warm_start)
  # Sessions go to the cluster's chief server when there is one (train/cluster.py); a
  # TF_CONFIG of the user's is read by cluster.from_flags, not as between-graph replication.
  session_config = tf.ConfigProto(isolate_session_state=True, allow_soft_placement=True) \
      if settings.session_target else None
  with cluster_lib.estimator_tf_config(settings.session_target):
    config = run_config_lib.RunConfig(
        model_dir=settings.model_dir, save_checkpoints_steps=None, save_checkpoints_secs=None,
        save_summary_steps=settings.log_every_steps, log_step_count_steps=None,
        tf_random_seed=settings.seed, keep_checkpoint_max=settings.keep_checkpoint_max or None,
        session_config=session_config)
  return estimator_lib.Estimator(model_fn_lib.model_fn_builder(settings), config=config,
                                 warm_start_from=warm_start)


def _tpu_estimator(settings, warm_start=None):
  """TPUEstimator on a Cloud TPU: the model_fn sees ``params["context"]`` and lowers the mesh
  with SimdMeshImpl over the TPU's cores (``mesh_shape`` must have as many processors). The
  whole batch is fed by each host (BROADCAST), as mesh-tensorflow expects."""
  from tensorflow_estimator.python.estimator.tpu import tpu_config, tpu_estimator
  try:
    cluster = tf.distribute.cluster_resolver.TPUClusterResolver(
        settings.tpu, zone=settings.tpu_zone or None, project=settings.gcp_project or None)
  except Exception as e:  # noqa: BLE001  (no network, unknown TPU, no credentials, ...)
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
    raise ValueError(f"--tpu={settings.tpu}: the Cloud TPU cannot be found ({first}); check "
                     "--tpu, --tpu_zone, --gcp_project and this host's network and "
                     "credentials") from e
  config = tpu_config.RunConfig(
      cluster=cluster, model_dir=settings.model_dir, save_checkpoints_steps=None,
      save_checkpoints_secs=None, tf_random_seed=settings.seed,
      keep_checkpoint_max=settings.keep_checkpoint_max or None,
      tpu_config=tpu_config.TPUConfig(
          iterations_per_loop=settings.iterations_per_loop, num_cores_per_replica=1,
          per_host_input_for_training=tpu_config.InputPipelineConfig.BROADCAST))
  b = settings.batch_size
  return tpu_estimator.TPUEstimator(
      model_fn=model_fn_lib.model_fn_builder(settings), config=config, use_tpu=True,
      train_batch_size=b, eval_batch_size=b, predict_batch_size=b, export_to_tpu=False,
      warm_start_from=warm_start)


def _train_input_fn(settings, start_step):
  def input_fn(params=None):
    return input_lib.get_dataset(
        settings.mixture_or_task_name, settings.sequence_length, settings.batch_size,
        split="train", seed=settings.seed, pack=settings.pack,
        decoder_only=settings.model.is_decoder_only, start_step=start_step,
        packing_strategy=settings.packing)
  return input_fn


def train(settings):
  """Trains to ``train_steps``, resuming exactly from the latest checkpoint in model_dir; one
  training process per model_dir (a second is refused, naming the first)."""
  # Checked before anything is written: the task or mixture, the checkpoints to start from.
  registry.get_mixture_or_task(settings.mixture_or_task_name)
  checkpoints.check_compatible(settings)
  os.makedirs(settings.model_dir, exist_ok=True)
  with lock_lib.ModelDirLock(settings.model_dir):
    _remove_stale_temp(settings.model_dir)
    return _train(settings)


def _remove_stale_temp(model_dir):
  """TF writes a checkpoint into ``<prefix>_temp*/`` before renaming it; under the lock any
  such folder is a killed run's leftover."""
  import glob
  import shutil
  for tmp in glob.glob(os.path.join(glob.escape(model_dir), "*_temp*")):
    if os.path.isdir(tmp):
      shutil.rmtree(tmp, ignore_errors=True)
      logging.info("removed %s, left by a killed run", tmp)


def _train(settings):
  checkpoints.make_resumable(settings.model_dir, settings.model)
  start = checkpoints.latest_step(settings.model_dir)
  warm = None
  if start == 0 and settings.init_checkpoint:
    warm = checkpoints.warm_start_settings(settings.init_checkpoint, settings.model)
  if start >= settings.train_steps:
    logging.info("model_dir already at step %d >= train_steps %d", start, settings.train_steps)
    return []
  logging.info("training %s from step %d to %d in %s", settings.mixture_or_task_name, start,
               settings.train_steps, settings.model_dir)
  try:
    _estimator(settings, warm).train(_train_input_fn(settings, start),
                                     max_steps=settings.train_steps,
                                     hooks=[_WriteModelGin(settings)])
  except checkpoints.READ_ERRORS as e:
    latest = tf.train.latest_checkpoint(settings.model_dir) or settings.init_checkpoint
    raise checkpoints.unreadable(latest, e, settings.model_dir, training=True) from None
  except (tf.train.NanLossDuringTrainingError, feedback.NanLossError):
    curve = feedback.read_curve(settings.model_dir)
    nan_step = (curve[-1][0] if curve else start) + 1
    # Step n's loss uses the weights after step n-1: that checkpoint is not good either.
    good = checkpoints.roll_back_before(settings.model_dir, nan_step - 1)
    raise feedback.NanLossError(
        f"loss is NaN at step {nan_step}; stopped. The last good checkpoint (step {good}) "
        f"in {settings.model_dir} is now the latest; later files are kept on disk.") from None
  return feedback.read_curve(settings.model_dir)


class _WriteModelGin(tf.train.SessionRunHook):
  """Writes model.gin, the model's bindings, beside the checkpoints (t5mtf.convert
  --from_checkpoint reads it) once the graph is built: settings that fail to build write
  nothing."""

  def __init__(self, settings):
    self._settings = settings

  def after_create_session(self, session, coord):
    atomic.write_text(os.path.join(self._settings.model_dir, "model.gin"),
                      config_lib.gin_text(self._settings.model, "t5mtf.main (training)"))


def _readable(settings, checkpoint_path):
  """The checkpoint to restore (default: model_dir's latest), shape-checked against the
  configured model and converted if stored in another dtype or naming."""
  path = checkpoint_path or tf.train.latest_checkpoint(settings.model_dir)
  if path is None:
    raise FileNotFoundError(f"no checkpoint in {settings.model_dir}")
  if settings.ensemble_model_dirs:  # Combined from the members, already in our form.
    return path
  return checkpoints.readable(path, settings.model)


def predict_ids(settings, examples, checkpoint_path=None, lengths=None):
  """examples: list of {"inputs": int32 array} -> list of output id arrays (decode or score)."""
  if not examples:
    return []
  est = _estimator(settings)
  checkpoint_path = _readable(settings, checkpoint_path)
  batches = _padded_batches(settings, examples, lengths)

  def input_fn(params=None):
    return tf.data.Dataset.from_tensor_slices(batches)

  out = []
  try:
    for pred in est.predict(input_fn, checkpoint_path=checkpoint_path,
                            yield_single_examples=True):
      out.append(pred["outputs"] if "outputs" in pred else pred["scores"])
  except checkpoints.READ_ERRORS as e:
    raise checkpoints.unreadable(checkpoint_path, e, settings.model_dir) from None
  return out[:len(examples)]


def _padded_batches(settings, examples, lengths=None):
  """Pads every example to fixed lengths and the count to a multiple of batch_size."""
  b = settings.batch_size
  n = int(np.ceil(len(examples) / b)) * b
  feats = {}
  for key, length in (lengths or settings.sequence_length).items():
    if key not in examples[0]:
      continue
    arr = np.zeros((n, length), np.int32)
    for i, ex in enumerate(examples):
      ids = np.asarray(ex[key], np.int32)[:length]
      arr[i, :len(ids)] = ids
    feats[key] = arr
    if key == "prefix_mask":
      continue
    feats[key + "_segment_ids"] = (arr != 0).astype(np.int32)
    feats[key + "_positions"] = np.where(arr != 0, np.arange(length)[None, :], 0).astype(np.int32)
  return {k: v.reshape(n // b, b, -1) for k, v in feats.items()}


def score_examples(settings, examples, checkpoint_path):
  """The log-likelihood of each example's targets given its inputs (teacher forced). An LM or
  prefix LM reads inputs+targets as one sequence and is scored on the targets part (§3.2.1)."""
  import dataclasses
  settings = dataclasses.replace(settings, predict_kind="score")
  if not settings.model.is_decoder_only:
    return predict_ids(settings, examples, checkpoint_path)
  length = settings.inputs_length + settings.targets_length
  joined = []
  for ex in examples:
    inputs = [t for t in np.asarray(ex.get("inputs", []))[:settings.inputs_length] if t]
    targets = [t for t in np.asarray(ex["targets"])[:settings.targets_length] if t]
    joined.append({"targets": np.array(inputs + targets, np.int32)[:length],
                   "prefix_mask": np.array([1] * len(inputs) + [0] * len(targets),
                                           np.int32)[:length]})
  return predict_ids(settings, joined, checkpoint_path,
                     lengths={"targets": length, "prefix_mask": length})


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
          "float32_bytes_per_device": int(per_device) * 4}


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
  """Tokenized examples of a task's split, in order (with their pretokenized text).

  Built in a graph of its own and read with a session, like the Estimator's input pipelines:
  mixing eager datasets with the graphs Estimator leaves behind captured graph tensors into
  eager functions after long runs.
  """
  task = registry.get_task(task_name)
  with tf.Graph().as_default():
    ds = task.get_dataset(sequence_length, split=split, shuffle=False, seed=0)
    if max_examples:
      ds = ds.take(max_examples)
    iterator = tf.data.make_initializable_iterator(ds)
    next_example = iterator.get_next()
    out = []
    with tf.Session() as sess:
      sess.run(iterator.initializer)
      while True:
        try:
          out.append(sess.run(next_example))
        except tf.errors.OutOfRangeError:
          return out


# -- evaluation ---------------------------------------------------------------------------------


def _step_number(text):
  try:
    return int(text)
  except ValueError:
    raise ValueError(f"--checkpoint_steps: {text!r} is not a step; give 'latest', 'all', a "
                     "step or a list like 1000,2000") from None


def select_checkpoints(model_dir, checkpoint_steps="latest", settings=None):
  """[(step, path)] for ``"latest"``, ``"all"``, a step or a list of steps. An ensemble
  (``settings.ensemble_model_dirs``) has one checkpoint: its members' latest, combined."""
  if settings is not None and settings.ensemble_model_dirs:
    model_dir, checkpoint_steps = checkpoints.ensemble_checkpoint(settings), "latest"
  if checkpoints.lost_steps(model_dir):  # Only named steps: which one is "latest" is lost.
    if checkpoint_steps in ("latest", None, "", "all"):
      checkpoints.check_state(model_dir, "name the steps to use with --checkpoint_steps "
                                         "(e.g. --checkpoint_steps={step})")
    available = checkpoints.steps_on_disk(model_dir)
  else:
    state = tf.train.get_checkpoint_state(model_dir)
    if state is None or not state.all_model_checkpoint_paths:
      raise FileNotFoundError(f"no checkpoint in {model_dir}")
    available = {int(p.rsplit("-", 1)[1]): p for p in state.all_model_checkpoint_paths}
  if checkpoint_steps in ("latest", None, ""):
    steps = [max(available)]
  elif checkpoint_steps == "all":
    steps = sorted(available)
  else:
    wanted = [checkpoint_steps] if isinstance(checkpoint_steps, int) else \
        [_step_number(s) for s in str(checkpoint_steps).split(",")]
    missing = [s for s in wanted if s not in available]
    if missing:
      raise ValueError(f"no checkpoint for step(s) {missing} in {model_dir}; "
                       f"available: {sorted(available)}")
    steps = wanted
  return [(s, available[s]) for s in steps]


def eval_task_names(settings):
  if settings.eval_tasks:
    return list(settings.eval_tasks)
  target = registry.get_mixture_or_task(settings.mixture_or_task_name)
  tasks = getattr(target, "tasks", [target])
  # As seqio evaluates a mixture: the tasks that have the split (MNLI's matched and
  # mismatched sets are their own tasks; glue_mnli_v002 has no "validation").
  from t5mtf.data.tasks import downstream
  names = []
  for t in tasks:
    if settings.eval_split in t.splits:
      names.append(t.name)
    else:  # glue_mnli_v002 -> its matched and mismatched evaluation tasks.
      names += [n for n in downstream.EVAL_TASKS.get(t.name, []) if n not in names]
  if not names:
    raise ValueError(f"no task of {settings.mixture_or_task_name!r} has the split "
                     f"{settings.eval_split!r}; set RunSettings.eval_split")
  return names


def evaluate(settings, checkpoint_steps="latest"):
  """Decodes every eval task's split for each checkpoint, scores it, writes
  ``eval_results.json`` / ``.csv`` and TensorBoard summaries; returns
  {"by_step": {step: {task: metrics}}, "best": {task: (step, score)}}."""
  from t5mtf.data import vocab as vocab_lib
  from t5mtf.evaluation import evaluate as evaluate_lib
  vocab = vocab_lib.get_default_vocabulary()
  names = eval_task_names(settings)
  examples = {n: task_examples(n, settings.eval_split, settings.sequence_length,
                               settings.eval_max_examples) for n in names}
  flat = [ex for n in names for ex in examples[n]]
  by_step = {}
  for step, path in select_checkpoints(settings.model_dir, checkpoint_steps, settings):
    ids = predict_ids(settings, flat, checkpoint_path=path)
    texts = [vocab.decode(x) for x in feedback.progress(ids, len(ids), f"decode step {step}")]
    results, start = {}, 0
    for n in names:
      k = len(examples[n])
      results[n] = evaluate_lib.score_task(registry.get_task(n), examples[n],
                                           texts[start:start + k])
      start += k
    results["averages"] = evaluate_lib.averages(results)
    by_step[step] = results
    _write_summaries(settings.model_dir, step, results)
  out = {"by_step": by_step, "best": _best(by_step)}
  _write_results(settings.model_dir, out)
  return out


def _best(by_step):
  """Best checkpoint per task by its score (the paper reports the best, §3.1.2)."""
  from t5mtf.evaluation import evaluate as evaluate_lib
  best = {}
  for step, results in by_step.items():
    for task, m in results.items():
      if task == "averages":
        continue
      score = evaluate_lib.task_score(m)
      if task not in best or score > best[task][1]:
        best[task] = (step, score)
  return best


def _write_summaries(model_dir, step, results):
  import tensorflow as tf2
  writer = tf2.summary.create_file_writer(os.path.join(model_dir, "eval"))
  with writer.as_default():
    for task, m in results.items():
      for metric, value in m.items():
        tf2.summary.scalar(f"eval/{task}/{metric}", float(value), step=step)
  writer.close()


def _write_results(model_dir, out):
  import csv
  import io
  import json
  atomic.write_text(os.path.join(model_dir, "eval_results.json"),
                    json.dumps(out, indent=2, sort_keys=True, default=float))
  buf = io.StringIO()
  w = csv.writer(buf)
  w.writerow(["step", "task", "metric", "value"])
  for step, results in sorted(out["by_step"].items()):
    for task, m in sorted(results.items()):
      for metric, value in sorted(m.items()):
        w.writerow([step, task, metric, value])
  atomic.write_text(os.path.join(model_dir, "eval_results.csv"), buf.getvalue())


# -- predict, score, export ---------------------------------------------------------------------


def _read_lines(path):
  """Every line of a UTF-8 file (a final newline does not make an extra line)."""
  with open(path, "rb") as f:
    raw = f.read()
  try:
    text = raw.decode("utf-8")
  except UnicodeDecodeError as e:
    line = raw[:e.start].count(b"\n") + 1
    raise ValueError(f"{path}: line {line}: not UTF-8 ({e.reason})") from None
  lines = text.split("\n")
  if lines and lines[-1] == "":
    lines.pop()
  if not lines:
    logging.warning("%s is empty: nothing to do", path)
  return [l.rstrip("\r") for l in lines]


def _encode(vocab, text, length, counter=None):
  ids = vocab.encode(text)
  if counter is not None and len(ids) > length - 1:
    counter.append(len(ids))
  return ids[:length - 1] + [vocab.eos_id]


def _warn_cut(cut, path, what, length, flag):
  if cut:
    logging.warning("%d line(s) of %s had %s longer than %d tokens and were cut (longest %d); "
                    "raise %s to keep them whole", len(cut), path, what, length - 1, max(cut),
                    flag)


def predict(settings, input_file, output_file, checkpoint_steps="latest"):
  """Decodes each line of ``input_file`` into the same line of ``output_file``; a blank input
  line gets a blank output line."""
  from t5mtf.data import vocab as vocab_lib
  vocab = vocab_lib.get_default_vocabulary()
  lines = _read_lines(input_file)
  (step, path), = select_checkpoints(settings.model_dir, checkpoint_steps, settings)[-1:]
  cut = []
  todo = [i for i, l in enumerate(lines) if l.strip()]
  examples = [{"inputs": _encode(vocab, lines[i], settings.inputs_length, cut)} for i in todo]
  _warn_cut(cut, input_file, "inputs", settings.inputs_length, "RunSettings.inputs_length")
  ids = predict_ids(settings, examples, checkpoint_path=path)
  out = [""] * len(lines)
  for i, x in zip(todo, ids):
    out[i] = vocab.decode(x).replace("\n", " ")
  atomic.write_lines(output_file, out)
  return step


def score(settings, input_file, output_file, checkpoint_steps="latest"):
  """Writes the log-likelihood of each ``input<TAB>target`` line's target given its input;
  a blank line gets a blank output line."""
  from t5mtf.data import vocab as vocab_lib
  vocab = vocab_lib.get_default_vocabulary()
  lines = _read_lines(input_file)
  examples, todo, cut_in, cut_t = [], [], [], []
  for i, line in enumerate(lines):
    if not line.strip():
      continue
    if "\t" not in line:
      raise ValueError(f"{input_file}: line {i + 1}: expected 'input<TAB>target'")
    inp, tgt = line.split("\t", 1)
    todo.append(i)
    examples.append({"inputs": _encode(vocab, inp, settings.inputs_length, cut_in),
                     "targets": _encode(vocab, tgt, settings.targets_length, cut_t)})
  _warn_cut(cut_in, input_file, "inputs", settings.inputs_length, "RunSettings.inputs_length")
  _warn_cut(cut_t, input_file, "targets", settings.targets_length,
            "RunSettings.targets_length")
  (step, path), = select_checkpoints(settings.model_dir, checkpoint_steps, settings)[-1:]
  scores = score_examples(settings, examples, path)
  out = [""] * len(lines)
  for i, s in zip(todo, scores):
    out[i] = f"{float(s):.6f}"
  atomic.write_lines(output_file, out)
  return step


def export(settings, export_dir):
  """A SavedModel whose ``serving_default`` maps a batch of input strings to output strings;
  always for one host (a cluster's devices are not baked into it)."""
  import dataclasses
  from t5mtf.data import vocab as vocab_lib
  settings = dataclasses.replace(settings, mesh_devices=(), session_target="")
  vocab = vocab_lib.get_default_vocabulary()
  b, length = settings.batch_size, settings.inputs_length

  def receiver():
    strings = tf.placeholder(tf.string, [b], name="inputs")
    ids = vocab.tf_encode(strings)[:, :length - 1]
    eos = tf.fill([b, 1], vocab.eos_id)
    ids = tf.concat([ids, tf.RaggedTensor.from_tensor(eos)], axis=1).to_tensor(
        shape=[b, length])
    features = {"inputs": ids, "inputs_segment_ids": tf.cast(ids > 0, tf.int32),
                "inputs_positions": tf.zeros_like(ids), "input_strings": strings}
    return tf.estimator.export.ServingInputReceiver(features, {"inputs": strings})
  checkpoint = _readable(settings, None)
  # Exported into <export_dir>.tmp-<pid> first and moved in whole: a kill leaves no partial
  # SavedModel (nor TF's temp-<timestamp> folder) in export_dir.
  export_dir = os.path.abspath(export_dir).rstrip("/")
  staging = atomic.staging_dir(export_dir)
  try:
    path = _estimator(settings).export_saved_model(staging, receiver,
                                                   checkpoint_path=checkpoint)
    path = path.decode() if isinstance(path, bytes) else path
    os.makedirs(export_dir, exist_ok=True)
    final = os.path.join(export_dir, os.path.basename(path))
    os.replace(path, final)
  except checkpoints.READ_ERRORS as e:
    raise checkpoints.unreadable(checkpoint, e, settings.model_dir) from None
  finally:
    import shutil
    shutil.rmtree(staging, ignore_errors=True)
  return final
