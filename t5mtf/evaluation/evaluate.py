"""Scores predictions per task and the benchmark averages (§2.3, §3.1.2).

A task's score is the mean of its metrics (e.g. MRPC: mean of F1 and accuracy); the GLUE and
SuperGLUE averages are means of task scores as the official benchmarks compute them, with WNLI
left out of the GLUE validation average (§3.1.2, footnote on WNLI).
"""
import re

from t5mtf.data import registry
from t5mtf.evaluation import metrics

GLUE_AVERAGE = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte")
SUPER_GLUE_AVERAGE = ("boolq", "cb", "copa", "multirc", "record", "rte", "wic", "wsc")
_NAME = re.compile(r"^(glue|super_glue)_([a-z0-9]+)_(v\d+|local)")


def benchmark_of(task_name):
  """``glue_cola_local`` -> ("glue", "cola"); other tasks -> (None, task_name)."""
  m = _NAME.match(task_name)
  return (m.group(1), m.group(2)) if m else (None, task_name)


def score_task(task, examples, predictions):
  """examples: dicts from ``Task.get_dataset`` (with ``targets_pretokenized``); predictions:
  decoded strings. -> {metric: value}."""
  if len(examples) != len(predictions):
    raise ValueError(f"task {task.name}: {len(predictions)} predictions for "
                     f"{len(examples)} examples")
  out = {}
  for fn in task.metric_fns:
    out.update(fn(examples, predictions))
  return out


def task_score(task_metrics):
  return metrics.mean_of(list(task_metrics.values()))


def averages(results):
  """results: {task name: {metric: value}} -> {"glue_average", "super_glue_average"} where
  every task of the benchmark is present."""
  by_bench = {"glue": {}, "super_glue": {}}
  for name, m in results.items():
    bench, sub = benchmark_of(name)
    if bench:
      by_bench[bench][sub] = task_score(m)
  out = {}
  for bench, wanted in (("glue", GLUE_AVERAGE), ("super_glue", SUPER_GLUE_AVERAGE)):
    present = [by_bench[bench][t] for t in wanted if t in by_bench[bench]]
    if present:
      out[f"{bench}_average"] = metrics.mean_of(present)
      out[f"{bench}_average_tasks"] = len(present)
  return out


def evaluate(rows):
  """rows: dicts with task, prediction, target and optional answers/idx/label (what
  ``python -m t5mtf.evaluation`` reads) -> {task: metrics, "averages": {...}}."""
  by_task = {}
  for i, row in enumerate(rows, start=1):
    for key in ("task", "prediction", "target"):
      if key not in row:
        raise ValueError(f"row {i}: missing {key!r}")
    by_task.setdefault(row["task"], []).append(row)
  results = {}
  for name, task_rows in by_task.items():
    task = registry.get_task(name)
    examples = [{"targets_pretokenized": r["target"], "answers": r.get("answers", r["target"]),
                 "idx": r.get("idx", -1), "label": r.get("label", "")} for r in task_rows]
    results[name] = score_task(task, examples, [r["prediction"] for r in task_rows])
  results["averages"] = averages({k: v for k, v in results.items()})
  return results
