"""One row of one of the paper's tables: an ``Experiment`` (what differs from the baseline) run at
a ``Scale`` (how big everything is), both set from gin.

``gin/experiments/tableNN/*.gin`` hold the rows, each a small diff from the baseline (§3.1);
``gin/scales/paper.gin`` is the paper's full setting and ``gin/scales/tiny.gin`` maps any row to a
run that fits 2 CPU cores. A row runs as: pre-train (unless the row has none) -> fine-tune on each
of the scale's benchmarks -> evaluate -> ``results.json`` in the row's folder.
"""
import dataclasses
import functools
import json
import os
import time
from typing import Optional

import gin

from t5mtf.data import mixing, objectives, registry
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
  """The row's own tasks and mixtures (truncated pre-training data, multi-task rates), named
  after the row so that every row can run in one process."""
  tag = f"t{exp.table}_{slug(exp.row)}"
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
  rates = mixing.rate_fn(exp.mixing, scale.temperature_limit, unbounded=(unsupervised,))
  sup = list(scale.supervised_tasks)
  _add(registry.Mixture(f"{tag}_multitask", [unsupervised] + sup, rates=rates))
  _add(registry.Mixture(f"{tag}_supervised", sup, rates=rates))
  for left_out in sup:
    _add(registry.Mixture(f"{tag}_without_{left_out}",
                          [unsupervised] + [t for t in sup if t != left_out], rates=rates))
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


def run(exp, scale, seed, out_dir):
  """Runs one row with one seed into ``out_dir``; returns and writes ``results.json``."""
  from t5mtf.train import loop
  start = time.time()
  out_dir = os.path.abspath(out_dir)
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
    s = _settings(os.path.join(out_dir, subdir), task, model, scale, seed, pre_steps, *lengths,
                  batch, learning_rate_schedule="rsqrt_decay")
    loop.train(s)
    return s.model_dir

  def finetune(task, init, subdir, seed=seed):
    s = _settings(os.path.join(out_dir, subdir), task, model, scale, seed, fine_steps,
                  *fine_lengths, batch, learning_rate_schedule="constant", init_checkpoint=init,
                  trainable=exp.trainable, unfreeze_episode_steps=max(1, int(fine_steps) // 12))
    loop.train(s)
    return s

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
    s = _settings(os.path.join(out_dir, "multitask"), names["multitask"], model, scale, seed,
                  pre_steps + fine_steps, *fine_lengths, batch,
                  learning_rate_schedule="rsqrt_decay",
                  eval_tasks=tuple(_eval_tasks(scale.benchmarks)))
    loop.train(s)
    _evaluate(s, scale, results)
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
      s = _settings(os.path.join(out_dir, "ensemble", bench), bench, model, scale, seed,
                    fine_steps, *fine_lengths, batch, ensemble_model_dirs=tuple(members))
      _evaluate(s, scale, results)
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
      _evaluate(s, scale, results)
  from t5mtf.evaluation import evaluate as evaluate_lib
  results["averages"] = evaluate_lib.averages(results)
  out = {"table": exp.table, "row": exp.row, "seed": seed, "scale": scale.name,
         "seconds": time.time() - start, "params": model.num_params(),
         "experiment": dataclasses.asdict(exp), "results": results}
  _write_json(os.path.join(out_dir, "results.json"), out)
  return out


def _eval_tasks(benchmarks):
  names = []
  for b in benchmarks:
    target = registry.get_mixture_or_task(b)
    names += [t.name for t in getattr(target, "tasks", [target])]
  return names


def _evaluate(settings, scale, results):
  """Adds scores per task (with several checkpoints, each task's best one, §3.1.2) and the
  held-out loss of the latest checkpoint to ``results``."""
  from t5mtf.train import loop
  evaluation = loop.evaluate(settings, scale.eval_checkpoints)
  for task, (step, _) in evaluation["best"].items():
    results[task] = evaluation["by_step"][step][task]
  nll, tokens = heldout_nll(settings)
  held = results.setdefault("heldout", {"nll": 0.0, "tokens": 0})
  held["nll"] += nll
  held["tokens"] += tokens
  held["loss"] = held["nll"] / max(held["tokens"], 1)


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
