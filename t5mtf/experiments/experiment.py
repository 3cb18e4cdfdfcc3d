"""One row of one of the paper's tables: an ``Experiment`` (what differs from the baseline) run at
a ``Scale`` (how big everything is), both set from gin.

``gin/experiments/tableNN/*.gin`` hold the rows, each a small diff from the baseline (§3.1);
``gin/scales/paper.gin`` is the paper's full setting and ``gin/scales/tiny.gin`` maps any row to a
run that fits 2 CPU cores. A row runs as: pre-train (unless the row has none) -> fine-tune on each
of the scale's benchmarks -> evaluate -> ``results.json`` in the row's folder.
"""
import dataclasses
import functools
import hashlib
import json
import os
import time
from typing import Optional

import gin

from t5mtf.data import mixing, objectives, registry
from t5mtf.data.tasks import downstream
from t5mtf.models import config as config_lib, sizes as sizes_lib
from t5mtf import atomic  # noqa: E402

MODES = ("pretrain_finetune", "multitask", "multitask_finetune", "leave_one_out",
         "supervised_pretrain_finetune")


@gin.configurable
@dataclasses.dataclass
class Scale:
  """Sizes of a run. Paper values (§3.1.2, §3.5.2, §3.7) by default."""
  name: str = "paper"
  pretrain_steps: int = 2**19
  finetune_steps: int = 2**18
  batch_size: int = 128
  inputs_length: int = 512  # Pre-training and fine-tuning inputs.
  finetune_targets_length: int = 128
  save_checkpoints_steps: int = 5000
  eval_checkpoints: str = "all"  # §3.1.2: report the best checkpoint per task.
  eval_max_examples: int = 0
  # Each benchmark is fine-tuned separately (GLUE and SuperGLUE as one mixture each, §2.3).
  benchmarks: tuple = ("glue_v002_proportional", "cnn_dailymail_v002", "squad_v010",
                       "super_glue_v102_proportional", "wmt_t2t_ende_v003", "wmt14_enfr_v003",
                       "wmt16_enro_v003")
  # The supervised tasks of the multi-task experiments (§3.5.2) and the corpus each name means.
  supervised_tasks: tuple = benchmarks
  corpora: Optional[dict] = None  # {table name: task prefix}; None: the C4 builders as named.
  model_sizes: Optional[dict] = None  # {size name: ModelConfig kwargs}; None: the paper's.
  temperature_limit: int = 2**21

  def corpus(self, name):
    corpora = self.corpora or {"c4": "c4_v220"}
    if name not in corpora:
      raise ValueError(f"scale {self.name!r} has no stand-in for pre-training data set {name!r}; "
                       f"it has {sorted(corpora)}")
    return corpora[name]

  def model(self, size, **overrides):
    table = self.model_sizes or PAPER_SIZES
    if size not in table:
      raise ValueError(f"scale {self.name!r} has no model size {size!r}; sizes: {sorted(table)}")
    return config_lib.ModelConfig(**{**table[size], **overrides})


def _size(name, **extra):
  d_model, d_ff, heads, d_kv, n = sizes_lib.SIZES[name]
  return dict(d_model=d_model, d_ff=d_ff, num_heads=heads, d_kv=d_kv, num_encoder_layers=n,
              num_decoder_layers=n, **extra)


# §3.6: "2x" and "4x" bigger models use BERT-Large-like dimensions with 16 and 32 layers per stack.
PAPER_SIZES = {name: _size(name) for name in ("small", "base", "large", "3B", "11B")}
PAPER_SIZES["2x"] = dict(d_model=1024, d_ff=4096, num_heads=16, d_kv=64, num_encoder_layers=16,
                         num_decoder_layers=16)
PAPER_SIZES["4x"] = dict(PAPER_SIZES["2x"], num_encoder_layers=32, num_decoder_layers=32)


@gin.configurable
@dataclasses.dataclass
class Experiment:
  """What a row changes from the baseline (§3.1). Defaults are the baseline."""
  table: int = 1
  row: str = "Baseline"
  baseline: bool = False  # The paper's starred row.
  size: str = "base"
  architecture: str = "encoder_decoder"
  layers_factor: float = 1.0  # Table 2's "6 layers" rows: 0.5.
  pretrain_corpus: str = "c4"
  pretrain_objective: str = "iid_replace_spans"  # A task suffix: {corpus}_{objective}.
  pretrain_steps_factor: float = 1.0  # 0: no pre-training (Table 1).
  data_repeats: int = 0  # Table 9: pre-train on 1/N of the tokens, repeated N times (0: all).
  batch_factor: int = 1  # Table 13.
  finetune_steps_factor: float = 1.0
  mode: str = "pretrain_finetune"  # Tables 11-12: see MODES.
  mixing: str = "proportional:2**19"  # Multi-task rates: proportional:K, temperature:T, equal.
  trainable: str = "all"  # Table 10: all | adapters | gradual_unfreezing.
  adapter_dim: int = 0
  ensemble: int = 1  # Table 13: models whose logits are averaged.
  ensemble_shared_pretraining: bool = False  # Table 13: one pre-trained model, N fine-tunings.

  def __post_init__(self):
    if self.mode not in MODES:
      raise ValueError(f"Experiment.mode={self.mode!r} is not one of {list(MODES)}")
    if self.ensemble > 1 and self.mode == "multitask":
      raise ValueError("Experiment.ensemble needs a fine-tuning mode, not 'multitask'")
    mixing.rate_fn(self.mixing)  # Fails here, naming the spec, if it is malformed.


def load(gin_files, gin_params=()):
  """Parses an experiment and a scale: -> (Experiment, Scale)."""
  from t5mtf import config_gin
  config_gin._configurables()  # Registers RunSettings, ModelConfig, ... for row bindings.
  gin.clear_config()
  if config_gin.GIN_DIR not in gin.config._LOCATION_PREFIXES:  # For "include 'experiments/...'".
    gin.add_config_file_search_path(config_gin.GIN_DIR)
  files = [config_gin.resolve_gin_file(f) for f in gin_files]
  try:
    gin.parse_config_files_and_bindings(files, list(gin_params), skip_unknown=False,
                                        finalize_config=False)
  except (ValueError, KeyError, SyntaxError) as e:
    raise config_gin.GinConfigError(f"gin: {config_gin.explain(e)}") from None
  return Experiment(), Scale()


def model_config(exp, scale):
  base = scale.model(exp.size, architecture=exp.architecture, adapter_dim=exp.adapter_dim)
  if exp.layers_factor != 1.0:
    base.num_encoder_layers = max(1, round(base.num_encoder_layers * exp.layers_factor))
    base.num_decoder_layers = max(1, round(base.num_decoder_layers * exp.layers_factor))
  if exp.architecture in ("lm", "prefix_lm"):
    base.num_encoder_layers = 0  # §3.2.2: one stack of L layers (P params).
  return base


def pretrain_lengths(exp, scale):
  """Span corruption gets targets sized by random_spans_helper (512/114, §3.3.4); every other
  objective targets = inputs, as the released code's defaults (utils.run.sequence_length
  512/512), so that no example of an i.i.d. objective is trimmed."""
  name = exp.pretrain_objective
  if name.startswith("span_corruption"):
    rate, span = objective_rate_span(name)
    return scale.inputs_length, objectives.random_spans_helper(scale.inputs_length, rate,
                                                               span)[1]
  return scale.inputs_length, scale.inputs_length


def objective_rate_span(name):
  """``span_corruption_r25_s5`` -> (0.25, 5.0); the defaults are 15% and 3 (1 for i.i.d.)."""
  rate, span = 0.15, 3.0 if name.startswith("span_corruption") else 1.0
  for part in name.split("_"):
    if part[:1] == "r" and part[1:].isdigit():
      rate = int(part[1:]) / 100
    if part[:1] == "s" and part[1:].isdigit():
      span = float(part[1:])
  return rate, span


def register_row_tasks(exp, scale, unsupervised, pretrain_tokens=0):
  """The row's own tasks and mixtures (truncated pre-training data, multi-task rates)."""
  names = {"unsupervised": unsupervised}
  if pretrain_tokens:
    base = registry.get_task(unsupervised)
    split, objective = base.preprocessors[0], base.preprocessors[1:]
    name = f"{unsupervised}_{pretrain_tokens}tokens"
    # Truncate the raw token pieces (before the noise), then repeat them (§3.4.2).
    _add(registry.Task(name, base.source, [split, functools.partial(
        _truncate_and_repeat, num_tokens=pretrain_tokens)] + objective,
        output_features=base.output_features))
    names["unsupervised"] = unsupervised = name
  sup = list(scale.supervised_tasks)
  # Named after what they hold, not after the row: two rows with the same mixtures train on the
  # same data and can share a run (see shared_train).
  tag = f"{unsupervised}_{slug(exp.mixing)}_{_digest([sup, scale.temperature_limit])[:8]}"

  def add(name, names):
    """A supervised entry may be a mixture (the paper scale's GLUE and SuperGLUE): its tasks go
    in with the released rates; leaving it out leaves all of them out."""
    tasks = downstream.expand_mixtures(names)
    _add(registry.Mixture(name, tasks, rates=downstream.multitask_rates(
        exp.mixing, tasks, scale.temperature_limit, unbounded=(unsupervised,))))
  add(f"{tag}_multitask", [unsupervised] + sup)
  add(f"{tag}_supervised", sup)
  for left_out in sup:
    add(f"{tag}_without_{left_out}", [unsupervised] + [t for t in sup if t != left_out])
  names.update(multitask=f"{tag}_multitask", supervised=f"{tag}_supervised",
               leave_one_out=lambda t: f"{tag}_without_{t}")
  return names


def _truncate_and_repeat(dataset, output_features=None, num_tokens=0):
  return mixing.truncate_to_tokens(dataset, num_tokens).repeat()


def _add(task_or_mixture):
  """Registers once: a second run of the same row in one process finds its tasks there."""
  name = task_or_mixture.name
  if name in registry.task_names() or name in registry.mixture_names():
    return
  if isinstance(task_or_mixture, registry.Mixture):
    registry.add_mixture(task_or_mixture)
  else:
    registry.add_task(task_or_mixture)


def slug(text):
  return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")


def _settings(model_dir, task, model, scale, seed, steps, inputs_length, targets_length,
              batch_size, **kw):
  from t5mtf.train import settings as settings_lib
  return settings_lib.RunSettings(
      model_dir=model_dir, mixture_or_task_name=task, model=model, inputs_length=inputs_length,
      targets_length=targets_length, batch_size=batch_size, train_steps=max(1, int(steps)),
      save_checkpoints_steps=min(scale.save_checkpoints_steps, max(1, int(steps))), seed=seed,
      log_every_steps=max(1, int(steps) // 4), eval_max_examples=scale.eval_max_examples, **kw)


# Part of every shared run's key: bump it when a change to the code changes what training makes.
# 2: dropout draws 16 random bits per unit (a0ec217), other masks than version 1's.
SHARED_VERSION = 2


def _digest(obj):
  return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def training_key(settings, scale):
  """Everything a training run's result depends on: its settings (the init checkpoint by its
  own key), the scale, and SHARED_VERSION. Two rows whose pre-training (or fine-tuning) has the
  same key make the same checkpoint, so the second reuses the first's. Only values that differ
  from their class's default count, so that a field added later (at a default that keeps the
  old behaviour) leaves earlier keys valid; a change of behaviour bumps SHARED_VERSION."""
  fields = _non_default(settings)
  fields.pop("model_dir", None)
  fields.pop("model", None)
  if settings.init_checkpoint:
    fields["init_checkpoint"] = os.path.basename(settings.init_checkpoint.rstrip("/"))
  return _digest({"settings": fields, "model": _non_default(settings.model),
                  "scale": _non_default(scale), "version": SHARED_VERSION})[:16]


def _non_default(obj):
  """The dataclass fields of ``obj`` whose values differ from their defaults."""
  def default(f):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
  return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)
          if getattr(obj, f.name) != default(f)}


RESUME_EVERY_STEPS = 400


class Trainer:
  """Runs a row's trainings. With ``shared_dir`` each run goes to ``shared_dir/<key>`` and a run
  whose key is already finished there (``trained.json``) is reused instead of repeated; the
  ledger records each run, reused or not, and the seconds it took when it was made."""

  def __init__(self, shared_dir=None):
    self.shared_dir = shared_dir and os.path.abspath(shared_dir)
    self.ledger = []

  def train(self, settings, scale, what):
    from t5mtf.train import loop
    if not self.shared_dir:
      loop.train(settings)
      return settings
    key = training_key(settings, scale)
    # A checkpoint every RESUME_EVERY_STEPS, so that a sweep stopped inside a long training
    # (Table 15's Baseline-1T: 32x the steps) goes on from there; training resumes exactly
    # (loop.train), so the cadence is not part of the key and changes no result.
    settings = dataclasses.replace(
        settings, model_dir=os.path.join(self.shared_dir, key),
        save_checkpoints_steps=min(settings.save_checkpoints_steps, RESUME_EVERY_STEPS))
    done = os.path.join(settings.model_dir, "trained.json")
    if os.path.exists(done):
      with open(done) as f:
        seconds = json.load(f)["seconds"]
      self.ledger.append({"what": what, "key": key, "reused": True, "seconds": seconds})
      return settings
    started = time.time()
    loop.train(settings)
    seconds = time.time() - started
    _write_json(done, {"seconds": seconds, "settings": dataclasses.asdict(settings)})
    self.ledger.append({"what": what, "key": key, "reused": False, "seconds": seconds})
    return settings

  def shared(self, settings):
    return bool(self.shared_dir) and os.path.dirname(settings.model_dir) == self.shared_dir


def run(exp, scale, seed, out_dir, work_dir=None, shared_dir=None):
  """Runs one row with one seed; writes and returns ``out_dir/results.json``. Model dirs go to
  ``work_dir`` (default ``out_dir``), or with ``shared_dir`` to ``shared_dir/<training key>``
  where rows with identical trainings share them (Trainer)."""
  from t5mtf.train import loop
  start = time.time()
  out_dir = os.path.abspath(out_dir)
  work_dir = os.path.abspath(work_dir or out_dir)
  trainer = Trainer(shared_dir)
  model = model_config(exp, scale)
  unsupervised = f"{scale.corpus(exp.pretrain_corpus)}_{exp.pretrain_objective}"
  registry.get_task(unsupervised)  # Fails early, naming the task, if it does not exist.
  inputs_length, targets_length = pretrain_lengths(exp, scale)
  batch = scale.batch_size * exp.batch_factor
  pre_steps = scale.pretrain_steps * exp.pretrain_steps_factor
  tokens = 0
  if exp.data_repeats:  # Table 9: the run's token budget / N (at least one piece of text).
    tokens = max(int(pre_steps * batch * inputs_length // exp.data_repeats), 2 * inputs_length)
  names = register_row_tasks(exp, scale, unsupervised, tokens)
  unsupervised = names["unsupervised"]
  fine_steps = scale.finetune_steps * exp.finetune_steps_factor
  fine_lengths = (scale.inputs_length, scale.finetune_targets_length)

  def pretrain(task, subdir, lengths=(inputs_length, targets_length), seed=seed):
    s = _settings(os.path.join(work_dir, subdir), task, model, scale, seed, pre_steps, *lengths,
                  batch, learning_rate_schedule="rsqrt_decay")
    return trainer.train(s, scale, subdir).model_dir

  def finetune(task, init, subdir, seed=seed):
    s = _settings(os.path.join(work_dir, subdir), task, model, scale, seed, fine_steps,
                  *fine_lengths, batch, learning_rate_schedule="constant", init_checkpoint=init,
                  trainable=exp.trainable, unfreeze_episode_steps=max(1, int(fine_steps) // 12))
    return trainer.train(s, scale, subdir)

  def starting_point(subdir, seed=seed):
    """What fine-tuning starts from in this row's mode ("" = from scratch)."""
    if exp.mode in ("multitask_finetune", "supervised_pretrain_finetune"):
      task = names["multitask" if exp.mode == "multitask_finetune" else "supervised"]
      return pretrain(task, subdir, fine_lengths, seed=seed)
    if exp.mode == "pretrain_finetune" and pre_steps > 0:
      return pretrain(unsupervised, subdir, seed=seed)
    return ""

  results = {}
  if exp.mode == "multitask":  # §3.5.2: one model trained on everything, evaluated directly,
    # for as many steps as pre-training and fine-tuning together (2^19 + 2^18).
    s = _settings(os.path.join(work_dir, "multitask"), names["multitask"], model, scale, seed,
                  pre_steps + fine_steps, *fine_lengths, batch,
                  learning_rate_schedule="rsqrt_decay",
                  eval_tasks=tuple(_eval_tasks(scale.benchmarks)))
    s = trainer.train(s, scale, "multitask")
    _evaluate(s, scale, results, trainer)
  elif exp.ensemble > 1:  # §3.6: N models (or N fine-tunings of one), logits averaged.
    shared = starting_point("pretrain") if exp.ensemble_shared_pretraining else None
    for bench in scale.benchmarks:
      members = []
      for k in range(exp.ensemble):
        member_seed = seed * 1000 + k
        init = shared if shared is not None else starting_point(f"member_{k}/pretrain",
                                                                member_seed)
        members.append(finetune(bench, init, f"member_{k}/finetune/{bench}",
                                member_seed).model_dir)
      s = _settings(os.path.join(work_dir, "ensemble", bench), bench, model, scale, seed,
                    fine_steps, *fine_lengths, batch, ensemble_model_dirs=tuple(members))
      _evaluate(s, scale, results, trainer)
  else:
    init = starting_point("pretrain") if exp.mode != "leave_one_out" else ""
    targets = scale.benchmarks
    if exp.mode == "leave_one_out":  # §3.5.3: per task, pre-train on all the others.
      targets = [t for t in scale.supervised_tasks if t in _eval_tasks(scale.benchmarks)]
    for bench in targets:
      bench_init = init
      if exp.mode == "leave_one_out":
        bench_init = pretrain(names["leave_one_out"](bench), f"pretrain_without_{bench}",
                              fine_lengths)
      s = finetune(bench, bench_init, os.path.join("finetune", bench))
      _evaluate(s, scale, results, trainer)
  from t5mtf.evaluation import evaluate as evaluate_lib
  results["averages"] = evaluate_lib.averages(results)
  seconds = time.time() - start
  reused = sum(t["seconds"] for t in trainer.ledger if t["reused"])
  out = {"table": exp.table, "row": exp.row, "seed": seed, "scale": scale.name,
         "seconds": seconds, "params": model.num_params(),
         # What the row would have taken with nothing shared: its time + the reused runs' time.
         "seconds_unshared": seconds + reused, "trainings": trainer.ledger,
         "code": code_version(),
         "experiment": dataclasses.asdict(exp), "results": results}
  os.makedirs(out_dir, exist_ok=True)
  _write_json(os.path.join(out_dir, "results.json"), out)
  return out


def code_version():
  """The git commit the row ran with ("+changes" if t5mtf/ or gin/ differed from it), so a
  table whose rows ran with different code shows it; "unknown" outside a git checkout."""
  import subprocess
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  try:
    commit = subprocess.run(["git", "-C", root, "rev-parse", "--short=12", "HEAD"],
                            capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    changes = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "t5mtf", "gin"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
  except (OSError, subprocess.SubprocessError):
    return "unknown"
  return commit + ("+changes" if changes.strip() else "")


def _eval_tasks(benchmarks):
  names = []
  for b in benchmarks:
    target = registry.get_mixture_or_task(b)
    names += [t.name for t in getattr(target, "tasks", [target])]
  return names


def _evaluate(settings, scale, results, trainer=None):
  """Adds scores per task (with several checkpoints, each task's best one, §3.1.2) and the
  held-out loss of the latest checkpoint to ``results``. A shared run's evaluation is kept
  beside it and reused by the next row that evaluates it the same way."""
  cache = None
  if trainer is not None and trainer.shared(settings):
    key = _digest([scale.eval_checkpoints, settings.eval_split, settings.eval_max_examples,
                   list(settings.eval_tasks), settings.decode_length, settings.beam_size,
                   settings.alpha, settings.beam_search])[:16]
    cache = os.path.join(settings.model_dir, f"row_evaluation_{key}.json")
  if cache and os.path.exists(cache):
    with open(cache) as f:
      scores, nll, tokens, seconds = json.load(f)
    trainer.ledger.append({"what": "evaluation", "key": os.path.basename(settings.model_dir),
                           "reused": True, "seconds": seconds})
  else:
    started = time.time()
    scores, nll, tokens = _evaluate_once(settings, scale)
    if cache:
      _write_json(cache, [scores, nll, tokens, time.time() - started])
  results.update(scores)
  held = results.setdefault("heldout", {"nll": 0.0, "tokens": 0})
  held["nll"] += nll
  held["tokens"] += tokens
  held["loss"] = held["nll"] / max(held["tokens"], 1)


def _evaluate_once(settings, scale):
  from t5mtf.train import loop
  evaluation = loop.evaluate(settings, scale.eval_checkpoints)
  scores = {task: evaluation["by_step"][step][task]
            for task, (step, _) in evaluation["best"].items()}
  nll, tokens = heldout_nll(settings)
  return scores, nll, tokens


def heldout_nll(settings):
  """(summed negative log-likelihood, target tokens) of the eval examples' targets, teacher
  forced: a smooth quality signal beside the decoded scores, which sit at their floor when a
  model is tiny (the tiny scale's extra "Loss" column)."""
  import numpy as np
  from t5mtf.train import loop
  examples = [ex for n in loop.eval_task_names(settings) for ex in loop.task_examples(
      n, settings.eval_split, settings.sequence_length, settings.eval_max_examples)]
  (_, path), = loop.select_checkpoints(settings.model_dir, "latest", settings)
  scores = loop.score_examples(settings, examples, path)
  tokens = sum(int(np.count_nonzero(np.asarray(ex["targets"])[:settings.targets_length]))
               for ex in examples)
  return -float(np.sum(scores)), tokens


def _write_json(path, obj):
  # A row counts as finished only once this file exists, whole.
  atomic.write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=float))
