"""Rows x seeds of results -> the paper's table layout: mean ± std, bold within two standard
deviations of the best (as the paper bolds, §3.1.5), the paper's numbers beside, a PNG chart."""
import math
import statistics

from t5mtf.experiments import paper, report

PAPER_COLUMNS = [c for c, _, _ in report.COLUMNS]
# Ours, beside the paper's: held-out per-token cross-entropy of the targets (lower is better).
COLUMNS = PAPER_COLUMNS + ["Loss"]
LOWER_IS_BETTER = {"Loss"}


def summarize(runs):
  """runs: [results.json dicts of one row] -> {column: (mean, std, n)} for evaluated columns."""
  by_column = {}
  for run in runs:
    values = report.column_values(run["results"])
    values["Loss"] = run["results"].get("heldout", {}).get("loss")
    for column, value in values.items():
      if value is not None and not math.isnan(value):
        by_column.setdefault(column, []).append(float(value))
  return {c: (statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else 0.0, len(v))
          for c, v in by_column.items()}


def bold_cells(rows, baseline_label=None):
  """{column: set(labels)}: rows whose mean is within two standard deviations of the column's best.
  The deviation is the baseline row's over seeds (the paper uses its baseline's, Table 1), else
  the mean of the rows' deviations; with one seed, only the best is bold."""
  out = {}
  for column in COLUMNS:
    cells = {label: s[column] for label, s in rows if column in s}
    if not cells:
      continue
    sign = -1 if column in LOWER_IS_BETTER else 1
    best = max(sign * mean for mean, _, _ in cells.values())
    if baseline_label in cells and cells[baseline_label][2] > 1:
      sigma = cells[baseline_label][1]
    else:
      sigma = statistics.fmean(std for _, std, _ in cells.values())
    out[column] = {label for label, (mean, _, _) in cells.items()
                   if sign * mean >= best - 2 * sigma}
  return out


def average(summary):
  """Mean over the evaluated paper columns."""
  values = [mean for c, (mean, _, _) in summary.items() if c in PAPER_COLUMNS]
  return statistics.fmean(values) if values else float("nan")


def quality(summary):
  """The direction check's number (higher is better): minus the held-out loss when the row has
  one (smooth even where decoded scores sit at their floor), else the average score."""
  return -summary["Loss"][0] if "Loss" in summary else average(summary)


def markdown(table, rows, baseline_label=None, skipped=()):
  """rows: [(label, summary)] -> the table in the paper's layout, then the paper's numbers."""
  columns = [c for c in COLUMNS if any(c in s for _, s in rows)] or COLUMNS
  bold = bold_cells(rows, baseline_label)
  lines = ["| | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
  for label, s in rows:
    cells = []
    for c in columns:
      if c not in s:
        cells.append("–")
        continue
      mean, std, n = s[c]
      text = f"{mean:.2f} ± {std:.2f}" if n > 1 else f"{mean:.2f}"
      cells.append(f"**{text}**" if label in bold.get(c, ()) else text)
    star = " ★" if label == baseline_label else ""
    lines.append(f"| {label}{star} | " + " | ".join(cells) + " |")
  for label, reason in skipped:
    lines.append(f"| {label} | not run: {reason} |" + " |" * (len(columns) - 1))
  return "\n".join(lines)


def paper_markdown(table):
  numbers = paper.NUMBERS.get(table)
  if not numbers:
    return f"The paper has no numbers of this layout for Table {table}."
  lines = ["| paper | " + " | ".join(PAPER_COLUMNS) + " |",
           "|---|" + "---|" * len(PAPER_COLUMNS)]
  for label, values in numbers.items():
    lines.append(f"| {label} | " + " | ".join(f"{values[c]:.2f}" for c in PAPER_COLUMNS) + " |")
  return "\n".join(lines)


def reference_row(table, rows, baseline_label):
  """The row directions are judged against: the baseline, or in a table without one (Table 4)
  the row the paper scores best, so the paper's ranking is still checked."""
  return baseline_label or paper.best_row(table, [label for label, _ in rows])


def direction_checks(table, rows, baseline_label):
  """[{row, expected, ours, how}] for every row but the reference (reference_row): the paper's
  direction against it ("above"/"below", None if not recorded) and ours (None if not run)."""
  reference = reference_row(table, rows, baseline_label)
  base = dict(rows).get(reference)
  checks = []
  for label, s in rows:
    if reference is None or label == reference:
      continue
    check = {"row": label, "expected": paper.expected_direction(table, label, reference),
             "ours": None, "how": ""}
    if base is not None and s:
      check["ours"] = "below" if quality(s) < quality(base) else \
          "above" if quality(s) > quality(base) else "level with"
      check["how"] = (f"held-out loss {s['Loss'][0]:.3f} vs {base['Loss'][0]:.3f}"
                      if "Loss" in s and "Loss" in base else
                      f"average score {average(s):.2f} vs {average(base):.2f}")
    checks.append(check)
  return checks


def held_count(checks):
  """(directions held, directions checked): rows with a recorded paper direction that ran."""
  checked = [c for c in checks if c["expected"] and c["ours"]]
  return sum(c["expected"] == c["ours"] for c in checked), len(checked)


def directions(table, rows, baseline_label):
  """One line per row: the paper's direction against the baseline (or, without one, against
  the paper's best row), and whether it held here."""
  reference = reference_row(table, rows, baseline_label)
  if reference is None:
    return ["No baseline row and no paper numbers for these rows: no direction to check."]
  lines = [] if baseline_label else [
      f"No baseline row in this table: each row is judged against {reference}, the row the "
      "paper scores best."]
  against = "the baseline" if baseline_label else reference
  for c in direction_checks(table, rows, baseline_label):
    label, expected, ours, how = c["row"], c["expected"], c["ours"], c["how"]
    if ours is None:
      lines.append(f"- {label}: {against} or row not run.")
    elif expected is None:
      lines.append(f"- {label}: {ours} {against} here ({how}); the paper's direction is not "
                   "recorded here.")
    else:
      held = "held" if ours == expected else "did not hold"
      lines.append(f"- {label}: paper {expected} {against}; here {ours} ({how}): {held}.")
  return lines


def bar_chart(title, rows, path):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  columns = [c for c in COLUMNS if any(c in s for _, s in rows)]
  fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(columns) * max(1, len(rows)) / 3), 4))
  width = 0.8 / max(1, len(rows))
  for i, (label, s) in enumerate(rows):
    xs = [j + i * width for j in range(len(columns))]
    ax.bar(xs, [s.get(c, (0, 0, 0))[0] for c in columns], width,
           yerr=[s.get(c, (0, 0, 0))[1] for c in columns], label=label, capsize=2)
  ax.set_xticks([j + 0.4 - width / 2 for j in range(len(columns))])
  ax.set_xticklabels(columns)
  ax.set_title(title, fontsize=9)
  ax.legend(fontsize=6)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def per_task(rows):
  """rows: [(label, runs)] -> markdown with every task metric (mean over seeds): the layout of
  the paper's appendix Table 16, every score of every experiment."""
  keys = sorted({(task, metric) for _, runs in rows for run in runs
                 for task, metrics in run["results"].items()
                 if task not in ("averages", "heldout") for metric in metrics})
  lines = ["| experiment | " + " | ".join(f"{t} {m}" for t, m in keys) + " |",
           "|---|" + "---|" * len(keys)]
  for label, runs in rows:
    cells = []
    for task, metric in keys:
      values = [r["results"][task][metric] for r in runs if metric in r["results"].get(task, {})]
      cells.append(f"{statistics.fmean(values):.2f}" if values else "–")
    lines.append(f"| {label} | " + " | ".join(cells) + " |")
  return "\n".join(lines)
