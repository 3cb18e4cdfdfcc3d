"""Paper-style results: a markdown table, a JSON file and a loss-curve PNG."""
import json
import math
import os
from t5mtf import atomic  # noqa: E402

# Columns of the paper's tables (Table 1 onwards) and where our metrics come from.
COLUMNS = [
  ("GLUE", "glue_average", None),
  ("CNNDM", "cnn_dailymail", "rouge2"),
  ("SQuAD", "squad_v010", "em"),
  ("SGLUE", "super_glue_average", None),
  ("EnDe", ("translate_en_de", "wmt_t2t_ende"), "bleu"),
  ("EnFr", ("translate_en_fr", "wmt14_enfr"), "bleu"),
  ("EnRo", ("translate_en_ro", "wmt16_enro"), "bleu"),
]


def column_values(results):
  """results: {task: metrics, "averages": {...}} -> {column: value or None}."""
  out = {}
  for column, key, metric in COLUMNS:
    if metric is None:
      out[column] = results.get("averages", {}).get(key)
      continue
    prefixes = key if isinstance(key, tuple) else (key,)
    matches = [m for t, m in results.items() if t.startswith(prefixes) and metric in m]
    out[column] = matches[0][metric] if matches else None
  return out


def _fmt(value):
  return "–" if value is None or (isinstance(value, float) and math.isnan(value)) \
    else f"{value:.2f}"


def markdown_table(rows, title=""):
  """rows: [(label, {column: value})] -> markdown with the paper's column order."""
  names = [c for c, _, _ in COLUMNS]
  lines = [f"### {title}", ""] if title else []
  lines.append("| | " + " | ".join(names) + " |")
  lines.append("|---|" + "---|" * len(names))
  for label, values in rows:
    lines.append(f"| {label} | " + " | ".join(_fmt(values.get(n)) for n in names) + " |")
  return "\n".join(lines)


def task_table(results):
  """Every task's metrics, one row per task."""
  lines = ["| task | metrics |", "|---|---|"]
  for task in sorted(t for t in results if t != "averages"):
    metrics = ", ".join(f"{k} {v:.2f}" for k, v in sorted(results[task].items()))
    lines.append(f"| {task} | {metrics} |")
  return "\n".join(lines)


def loss_curve_png(curves, path):
  """curves: {label: [(step, loss)]} -> a PNG (matplotlib, no display)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(7, 4))
  for label, curve in curves.items():
    if curve:
      steps, losses = zip(*curve)
      ax.plot(steps, losses, label=label)
  ax.set_xlabel("step")
  ax.set_ylabel("training loss (cross-entropy per token)")
  ax.legend()
  ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def write_json(path, obj):
  atomic.write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=float))
  return os.path.abspath(path)
