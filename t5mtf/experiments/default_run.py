"""The embedded default: ``python -m t5mtf.main`` with no flags.

Offline on 2 CPU cores in minutes: pre-trains the tiny model with span corruption (§3.1.4) on the
real English text shipped in ``data/``, fine-tunes it on a mixture of the shipped task samples
(GLUE SST-2 and RTE, SuperGLUE BoolQ and CB, SQuAD, CNN/DM, English-German), evaluates every
task on its held-out split and prints a paper-style results table. Writes ``results.md``,
``results.json`` and ``loss_curve.png`` into the model_dir.

Scale is the only change from the paper's recipe: a 2.3M-parameter model, a few hundred steps,
sequences of 128/256 tokens. The numbers show the pipeline working end to end, not T5's quality.
"""
import dataclasses
import os
import time

from absl import logging

from t5mtf.data import objectives
from t5mtf.experiments import report
from t5mtf.models import sizes
from t5mtf.train import feedback, loop, settings as settings_lib

PRETRAIN_TASK = "local_span_corruption"
FINETUNE_MIXTURE = "default_finetune_local"
PRETRAIN_STEPS = 1500
FINETUNE_STEPS = 1000
EVAL_MAX_EXAMPLES = 64


def pretrain_settings(model_dir, steps=PRETRAIN_STEPS):
  inputs_length = 128
  _, targets_length = objectives.random_spans_helper(inputs_length)
  return settings_lib.RunSettings(
      model_dir=os.path.join(model_dir, "pretrain"), mixture_or_task_name=PRETRAIN_TASK,
      model=sizes.config_for("tiny"), inputs_length=inputs_length,
      targets_length=targets_length, batch_size=16, train_steps=steps,
      save_checkpoints_steps=max(1, steps // 2), learning_rate_schedule="rsqrt_decay",
      log_every_steps=50)


def finetune_settings(model_dir, pretrained_dir, steps=FINETUNE_STEPS):
  return settings_lib.RunSettings(
      model_dir=os.path.join(model_dir, "finetune"), mixture_or_task_name=FINETUNE_MIXTURE,
      model=sizes.config_for("tiny"), inputs_length=256, targets_length=64, batch_size=16,
      train_steps=steps, save_checkpoints_steps=max(1, steps // 2),
      learning_rate_schedule="constant", init_checkpoint=pretrained_dir, log_every_steps=50,
      eval_max_examples=EVAL_MAX_EXAMPLES)


def run(model_dir, pretrain_steps=PRETRAIN_STEPS, finetune_steps=FINETUNE_STEPS):
  model_dir = os.path.abspath(model_dir)
  print(f"t5mtf embedded default: writing to {model_dir}", flush=True)
  os.makedirs(model_dir, exist_ok=True)
  start = time.time()
  pre = pretrain_settings(model_dir, pretrain_steps)
  logging.info("1/3 pre-training the tiny model (%s params) on %s", f"{pre.model.num_params():,}",
               PRETRAIN_TASK)
  loop.train(pre)
  fine = finetune_settings(model_dir, pre.model_dir, finetune_steps)
  logging.info("2/3 fine-tuning on %s", FINETUNE_MIXTURE)
  loop.train(fine)
  logging.info("3/3 evaluating on the held-out splits")
  evaluation = loop.evaluate(fine, "latest")
  (step, results), = evaluation["by_step"].items()
  return write_report(model_dir, pre, fine, step, results, time.time() - start)


def write_report(model_dir, pre, fine, step, results, seconds):
  curves = {"pre-training (span corruption)": feedback.read_curve(pre.model_dir),
            "fine-tuning (mixture)": feedback.read_curve(fine.model_dir)}
  report.loss_curve_png(curves, os.path.join(model_dir, "loss_curve.png"))
  row = report.column_values(results)
  text = "\n\n".join([
      "# t5mtf embedded default",
      f"Tiny T5 ({pre.model.num_params():,} parameters), pre-trained {pre.train_steps} steps "
      f"on the shipped English text, fine-tuned {fine.train_steps} steps on "
      f"{FINETUNE_MIXTURE}, evaluated at step {step} on up to {EVAL_MAX_EXAMPLES} held-out "
      f"examples per task, greedy decoding. Wall time {seconds / 60:.1f} min.",
      report.markdown_table([("tiny, offline (ours)", row)],
                            "Paper-style summary (GLUE/SGLUE: averages of available tasks)"),
      "### Every task", report.task_table(results),
      "The paper's T5-Base baseline (Table 1) for scale: GLUE 83.28, CNNDM 19.24, SQuAD 80.88, "
      "SGLUE 71.36, EnDe 26.98, EnFr 39.82, EnRo 27.65.",
  ])
  from t5mtf import atomic
  atomic.write_text(os.path.join(model_dir, "results.md"), text + "\n")
  report.write_json(os.path.join(model_dir, "results.json"), {
      "step": step, "results": results, "columns": row, "seconds": seconds,
      "pretrain": dataclasses.asdict(pre.model)})
  print(text, flush=True)
  return results
