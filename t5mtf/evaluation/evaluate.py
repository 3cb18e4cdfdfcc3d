"""Scores predictions per task and the benchmark averages (§2.3, §3.1.2), as the released code
does: targets and predictions go through the task's postprocessor, then its metric fns; a
benchmark average is the mean over metric groups (MRPC's F1 and accuracy are one group, MNLI's
matched and mismatched accuracies another), with WNLI left out of GLUE (§3.1.2).
"""
from t5mtf.data import registry
from t5mtf.evaluation import metrics

# Benchmark -> {task name stem: group}. A group's score is the mean of its metrics.
AVERAGE_GROUPS = {
    "glue": {"cola": "cola", "sst2": "sst2", "mrpc": "mrpc", "stsb": "stsb", "qqp": "qqp",
             "mnli_matched": "mnli", "mnli_mismatched": "mnli", "qnli": "qnli", "rte": "rte"},
    "super_glue": {"boolq": "boolq", "cb": "cb", "copa": "copa", "multirc": "multirc",
                   "record": "record", "rte": "rte", "wic": "wic", "wsc": "wsc"},
}
_SUFFIXES = ("_v002", "_v102", "_local")


def benchmark_of(task_name):
  """``glue_cola_local`` -> ("glue", "cola"); ``glue_mnli_matched_v002`` -> ("glue",
  "mnli_matched"); other tasks -> (None, task_name)."""
  for bench in ("super_glue", "glue"):
    prefix = bench + "_"
    if task_name.startswith(prefix):
      for suffix in _SUFFIXES:
        if task_name.endswith(suffix):
          return bench, task_name[len(prefix):-len(suffix)]
  return None, task_name


def score_task(task, examples, predictions):
  """examples: dicts from ``Task.get_dataset`` (strings as bytes, with
  ``targets_pretokenized``); predictions: decoded strings. -> {metric: value}."""
  if len(examples) != len(predictions):
    raise ValueError(f"task {task.name}: {len(predictions)} predictions for "
                     f"{len(examples)} examples")
  targets = [task.postprocess(_text(ex["targets_pretokenized"]), example=ex, is_target=True)
             for ex in examples]
  preds = [task.postprocess(p, example=ex, is_target=False)
           for p, ex in zip(predictions, examples)]
  out = {}
  for fn in task.metric_fns:
    try:
      out.update(fn(targets, preds))
    except ValueError as e:  # E.g. a correlation over fewer than 2 rows.
      raise ValueError(f"task {task.name}: {getattr(fn, '__name__', fn)} over "
                       f"{len(preds)} row(s): {e}") from None
  return {k: float(v) for k, v in out.items()}


def _text(value):
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def task_score(task_metrics):
  return metrics.mean_of(list(task_metrics.values()))


def averages(results):
  """results: {task name: {metric: value}} -> {"glue_average", "super_glue_average"} over the
  groups present, with ``<bench>_average_tasks`` the number of groups averaged."""
  out = {}
  for bench, groups in AVERAGE_GROUPS.items():
    by_group = {}
    for name, m in results.items():
      b, stem = benchmark_of(name)
      if b == bench and stem in groups:
        by_group.setdefault(groups[stem], []).extend(m.values())
    if by_group:
      out[f"{bench}_average"] = metrics.mean_of(
          [metrics.mean_of(v) for v in by_group.values()])
      out[f"{bench}_average_tasks"] = len(by_group)
  return out


def _example(row):
  """A CLI row -> the example features the postprocessors read."""
  answers = row.get("answers", [row["target"]])
  if isinstance(answers, str):
    answers = [answers]
  idx = row.get("idx", -1)
  return {"targets_pretokenized": row["target"].encode("utf-8"),
          "answers": [a.encode("utf-8") for a in answers],
          "idx/question": idx, "idx/passage": row.get("passage_idx", -1), "idx/query": idx,
          "label": _label(row.get("label", 0))}


def _label(value):
  if isinstance(value, str):
    return {"true": 1, "false": 0}.get(value.strip().lower(), -1)
  return int(value)


def evaluate(rows):
  """rows: dicts with task, prediction, target and optional answers/idx/label (what
  ``python -m t5mtf.evaluation`` reads) -> {task: metrics, "averages": {...}}."""
  by_task = {}
  for i, row in enumerate(rows, start=1):
    if not isinstance(row, dict):
      raise ValueError(f"row {i}: not a JSON object but {type(row).__name__}")
    for key in ("task", "prediction", "target"):
      if key not in row:
        raise ValueError(f"row {i}: missing {key!r}")
      if not isinstance(row[key], str):  # A number would score as a wrong answer, silently.
        raise ValueError(f"row {i}: {key!r} must be a string, got {row[key]!r}")
    answers = row.get("answers", [])
    if not isinstance(answers, str) and not (
        isinstance(answers, list) and all(isinstance(a, str) for a in answers)):
      raise ValueError(f"row {i}: 'answers' must be a list of strings, got {answers!r}")
    by_task.setdefault(row["task"], []).append(row)
  if not by_task:
    raise ValueError("no rows to evaluate")
  results = {}
  for name, task_rows in by_task.items():
    task = registry.get_task(name)
    results[name] = score_task(task, [_example(r) for r in task_rows],
                               [r["prediction"] for r in task_rows])
  results["averages"] = averages(results)
  return results

