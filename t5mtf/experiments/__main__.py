"""Runs a table of the paper and prints it in the paper's layout:

    python -m t5mtf.experiments --table=2 --scale=tiny --seeds=3

Every row of ``gin/experiments/tableNN/`` runs once per seed in a process of its own (pre-train,
fine-tune, evaluate); its ``results.json`` goes to ``<output_dir>/<scale>/tableNN/<row>/seed<k>/``
(the published folder, ``results/`` by default) and its checkpoints under ``<work_dir>/<scale>/``.
Rows with a ``results.json`` in the published folder are skipped, so a sweep stopped on one
machine resumes from that folder on another. Trainings whose settings are identical (the same
model, data, objective, steps and seed: every table's baseline, Table 10's and 13's fine-tuning
rows) run once into ``<work_dir>/<scale>/shared/<key>/`` and are reused (``--noshare`` turns this
off); each table reports the time that saved. Writes ``table.md``, ``results.json`` and
``table.png`` per table and a ``README.md`` summarising every table run so far.
"""
import glob
import json
import os
import subprocess
import sys
import time

from absl import app, flags

from t5mtf import config_gin
from t5mtf.experiments import report, tables
from t5mtf import cli  # noqa: E402
from t5mtf import atomic  # noqa: E402

flags.DEFINE_integer("table", None, "Table number: 1, 2, 4-15 run experiments; 3 prints what "
                     "each objective makes of the paper's example sentence; 16 lists every "
                     "task's score of every row run so far.")
flags.DEFINE_string("scale", "tiny", "gin/scales/<scale>.gin: tiny or paper.")
flags.DEFINE_integer("seeds", 1, "Runs per row; the table shows mean ± std over them.",
                     lower_bound=1)
flags.DEFINE_string("output_dir", "results", "Where rows' results and tables are published.")
flags.DEFINE_string("work_dir", "experiments_out", "Where checkpoints are written.")
flags.DEFINE_bool("share", True, "Run identical trainings once and reuse them across rows.")
flags.DEFINE_list("rows", [], "Only these rows (file names without .gin, or their numbers).")
flags.DEFINE_multi_string("gin_param", [], "Extra gin bindings for every row.")
FLAGS = flags.FLAGS


def row_files(table):
  folder = os.path.join(config_gin.GIN_DIR, "experiments", f"table{table:02d}")
  files = sorted(glob.glob(os.path.join(folder, "*.gin")))
  if not files:
    have = sorted(int(d[5:]) for d in os.listdir(os.path.dirname(folder)) if d.startswith("table"))
    raise SystemExit(f"no experiments for table {table}; tables with experiments: {have}")
  return files


def select_rows(files, wanted):
  """The row files named by ``--rows`` (file names without .gin, or their numbers); an unknown
  name is refused, listing the table's rows."""
  if not wanted:
    return files
  names = [os.path.basename(f)[:-4] for f in files]
  chosen, unknown = [], []
  for r in wanted:
    match = [f for f, n in zip(files, names) if n == r or n.split("_")[0] == r.zfill(2)]
    (chosen.extend(m for m in match if m not in chosen) if match else unknown.append(r))
  if unknown:
    raise ValueError(f"--rows: no row {', '.join(map(repr, unknown))} in this table; its rows: "
                     f"{', '.join(names)}")
  return chosen


def row_info(path):
  """(label, is_baseline) read from the row's gin file without parsing it."""
  label, baseline = os.path.basename(path)[:-4], False
  with open(path) as f:
    for line in f:
      if line.startswith("Experiment.row ="):
        label = line.split("=", 1)[1].strip().strip('"')
      if line.replace(" ", "").startswith("Experiment.baseline=True"):
        baseline = True
  return label, baseline


def run_row(path, scale, seed, out_dir, gin_params, work_dir=None, shared_dir=None):
  if os.path.exists(os.path.join(out_dir, "results.json")):
    return "done"
  cmd = [sys.executable, "-m", "t5mtf.experiments.run_row", f"--gin_file={path}",
         f"--gin_file=scales/{scale}.gin", f"--seed={seed}", f"--output_dir={out_dir}"]
  cmd += [f"--work_dir={work_dir}"] * bool(work_dir) + [f"--shared_dir={shared_dir}"] * bool(
      shared_dir)
  cmd += [f"--gin_param={p}" for p in gin_params]
  started = time.time()
  code = subprocess.call(cmd)
  if code == 3:
    return "skipped"
  if code:
    return f"failed (exit {code})"
  return f"ran in {(time.time() - started) / 60:.1f} min"


def collect(table_dir, files, seeds):
  """-> rows [(label, summary)], baseline label, skipped [(label, reason)], runs by label."""
  rows, skipped, runs, baseline = [], [], {}, None
  for path in files:
    label, is_base = row_info(path)
    baseline = label if is_base else baseline
    name = os.path.basename(path)[:-4]
    found = []
    for seed in range(seeds):
      d = os.path.join(table_dir, name, f"seed{seed}")
      if os.path.exists(os.path.join(d, "results.json")):
        with open(os.path.join(d, "results.json")) as f:
          found.append(json.load(f))
      elif os.path.exists(os.path.join(d, "skipped.json")):
        with open(os.path.join(d, "skipped.json")) as f:
          skipped.append((label, json.load(f)["reason"]))
        break
    if found:
      rows.append((label, tables.summarize(found)))
      runs[label] = found
  return rows, baseline, skipped, runs


def not_run_yet(files, runs, skipped):
  """Labels of the rows with neither a run nor a reason to skip them: a sweep stopped part-way."""
  done = set(runs) | {label for label, _ in skipped}
  return [label for label in (row_info(p)[0] for p in files) if label not in done]


def data_set_note(scale):
  """Which task stands for each of Table 8's pre-training data sets at this scale."""
  from t5mtf.experiments import experiment
  _, s = experiment.load([f"scales/{scale}.gin"])
  corpora = s.corpora or {"c4": "c4_v220"}
  return "Pre-training data sets at this scale: " + "; ".join(
      f"{name} -> {task}" for name, task in corpora.items()) + "."


def write_table(table, scale, table_dir, files, seeds):
  rows, baseline, skipped, runs = collect(table_dir, files, seeds)
  to_run = not_run_yet(files, runs, skipped)
  title = f"Table {table} at scale {scale} ({seeds} seed{'s' * (seeds > 1)})"
  minutes = {label: sum(r["seconds"] for r in rs) / 60 for label, rs in runs.items()}
  unshared = {label: sum(r.get("seconds_unshared", r["seconds"]) for r in rs) / 60
              for label, rs in runs.items()}
  codes = sorted({r.get("code", "unknown") for rs in runs.values() for r in rs})
  checks = tables.direction_checks(table, rows, baseline)
  held, checked = tables.held_count(checks)
  scale_note = ""
  first = next(iter(runs.values()), None)
  if first and scale == "tiny":
    scale_note = ("Tiny scale (gin/scales/tiny.gin): a ~2M-parameter model, 200 pre-training and "
                  "200 fine-tuning steps on the text and task samples shipped in data/, pre-training "
                  "data sets mapped to shipped stand-ins (C4 -> shipped web pages cleaned with C4's "
                  "rules; see the scale file). Scores are near chance at this size: read directions, "
                  "not values.")
  if table == 8:
    scale_note += "\n\n" + data_set_note(scale)
  text = "\n\n".join(filter(None, [
      f"# {title}", scale_note,
      tables.markdown(table, rows, baseline, skipped),
      f"Not run yet (the sweep resumes with them: `python -m t5mtf.experiments --table={table} "
      f"--scale={scale}`): {'; '.join(to_run)}." if to_run else "",
      "Bold: within two standard deviations of the best in its column (★: the paper's baseline). "
      "Loss (ours, not in the paper): held-out per-token cross-entropy of the targets, lower is "
      "better; directions below use it when present.",
      "## The paper", tables.paper_markdown(table),
      "## Directions",
      "\n".join(tables.directions(table, rows, baseline)),
      "## Time", "\n".join(f"- {label}: {m:.1f} min over {len(runs[label])} run(s)" + (
          f" ({unshared[label]:.1f} min without shared trainings)"
          if unshared[label] > m + 0.05 else "") for label, m in minutes.items()),
      f"Total: {sum(minutes.values()):.1f} min; {sum(unshared.values()):.1f} min with nothing "
      "shared (each reused training or evaluation counted at the time it took when it ran)."
      if runs else "",
      f"Code: {', '.join(codes)} (the git commit each run used)." if codes else "",
  ]))
  atomic.write_text(os.path.join(table_dir, "table.md"), text + "\n")
  report.write_json(os.path.join(table_dir, "results.json"), {
      "table": table, "scale": scale, "seeds": seeds, "baseline": baseline,
      "rows": {label: {"summary": s, "runs": [r["results"] for r in runs[label]]}
               for label, s in rows},
      "skipped": dict(skipped), "to_run": to_run, "minutes": minutes,
      "minutes_unshared": unshared, "code": codes,
      "directions": {"held": held, "checked": checked, "rows": checks}})
  if rows:
    tables.bar_chart(title, rows, os.path.join(table_dir, "table.png"))
  return text


def write_summary(scale_dir):
  text = summary_text(scale_dir)
  atomic.write_text(os.path.join(scale_dir, "README.md"), text)
  return text


def summary_text(scale_dir):
  """``<scale_dir>/README.md``: per table, rows run, the paper's directions held and the wall
  time, read from the tables' ``results.json`` (nothing here is typed by hand)."""
  lines = ["| table | rows run | rows that cannot run here | rows still to run | directions held "
           "| wall time (min) | without sharing (min) |", "|---|---|---|---|---|---|---|"]
  totals = [0, 0, 0.0, 0.0]
  for path in sorted(glob.glob(os.path.join(scale_dir, "table[0-9][0-9]", "results.json"))):
    with open(path) as f:
      t = json.load(f)
    held, checked = t["directions"]["held"], t["directions"]["checked"]
    minutes, unshared = sum(t["minutes"].values()), sum(t["minutes_unshared"].values())
    totals = [totals[0] + held, totals[1] + checked, totals[2] + minutes, totals[3] + unshared]
    lines.append(f"| [{t['table']}](table{t['table']:02d}/table.md) | {len(t['rows'])} | "
                 f"{len(t['skipped'])} | {len(t.get('to_run', []))} | {held}/{checked} | "
                 f"{minutes:.1f} | {unshared:.1f} |")
  lines.append(f"| all | | | | {totals[0]}/{totals[1]} | {totals[2]:.1f} | {totals[3]:.1f} |")
  scale = os.path.basename(scale_dir)
  text = "\n\n".join([
      f"# The paper's tables at scale {scale}",
      "Written by `python -m t5mtf.experiments --table=N --scale=" + scale + "` after every table "
      "(each table's folder has `table.md`, `table.png` and `results.json`; each row's runs are "
      "in `<row>/seed<k>/results.json`). A direction holds when a row lands on the same side of "
      "the table's baseline as in the paper (by held-out loss at this scale; a table without a "
      "baseline row, Table 4, is judged against the row the paper scores best). \"Without "
      "sharing\" adds the time of every training and evaluation a row reused from an identical "
      "earlier one.", "\n".join(lines)])
  return text + "\n"


def write_table16(scale_dir):
  """The layout of the paper's appendix Table 16 (every task's score for every experiment) from
  the rows finished under ``scale_dir``; nothing is run."""
  rows = []
  for table_dir in sorted(glob.glob(os.path.join(scale_dir, "table[0-9][0-9]"))):
    table = int(os.path.basename(table_dir)[5:])
    for path in row_files(table):
      label, _ = row_info(path)
      runs = []
      for result in sorted(glob.glob(os.path.join(table_dir, os.path.basename(path)[:-4],
                                                  "seed*", "results.json"))):
        with open(result) as f:
          runs.append(json.load(f))
      if runs:
        rows.append((f"T{table}: {label}", runs))
  if not rows:
    raise SystemExit(f"no finished rows under {scale_dir}: run some tables first")
  text = "\n\n".join([f"# Table 16 layout: every task, every experiment ({scale_dir})",
                       tables.per_task(rows)])
  atomic.write_text(os.path.join(scale_dir, "table16.md"), text + "\n")
  return text


def main(argv):
  del argv
  if FLAGS.table is None:
    raise SystemExit("--table is required, e.g. --table=2")
  if FLAGS.table == 3:  # Examples of the objectives, no runs.
    from t5mtf.experiments import table3
    out = os.path.join(os.path.abspath(FLAGS.output_dir), "table03.md")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    atomic.write_text(out, table3.markdown() + "\n")
    print(table3.markdown())
    return
  if FLAGS.table == 16:  # Every score of every experiment run so far at this scale.
    print(write_table16(os.path.join(os.path.abspath(FLAGS.output_dir), FLAGS.scale)))
    return
  config_gin.resolve_gin_file(f"scales/{FLAGS.scale}.gin")
  all_files = row_files(FLAGS.table)
  files = select_rows(all_files, FLAGS.rows)
  from t5mtf.experiments import experiment
  experiment.load([files[0], f"scales/{FLAGS.scale}.gin"], FLAGS.gin_param)  # Bad bindings: now.
  table_dir = os.path.join(os.path.abspath(FLAGS.output_dir), FLAGS.scale,
                           f"table{FLAGS.table:02d}")
  work_dir = os.path.join(os.path.abspath(FLAGS.work_dir), FLAGS.scale, f"table{FLAGS.table:02d}")
  shared_dir = os.path.join(os.path.abspath(FLAGS.work_dir), FLAGS.scale, "shared") \
      if FLAGS.share else None
  os.makedirs(table_dir, exist_ok=True)
  print(f"table {FLAGS.table}: {len(files)} rows x {FLAGS.seeds} seeds -> {table_dir}", flush=True)
  started, failures = time.time(), []
  for path in files:
    for seed in range(FLAGS.seeds):
      row = os.path.join(os.path.basename(path)[:-4], f"seed{seed}")
      status = run_row(path, FLAGS.scale, seed, os.path.join(table_dir, row), FLAGS.gin_param,
                       os.path.join(work_dir, row), shared_dir)
      print(f"[{(time.time() - started) / 60:5.1f} min] {os.path.basename(path)} seed {seed}: "
            f"{status}", flush=True)
      if status.startswith("failed"):
        failures.append(f"{os.path.basename(path)} seed {seed}")
      if status == "skipped":
        break
  # Every finished row of the table, not only this call's: a table never loses rows.
  print(write_table(FLAGS.table, FLAGS.scale, table_dir, all_files, FLAGS.seeds), flush=True)
  write_summary(os.path.dirname(table_dir))
  print(f"\ntable {FLAGS.table} took {(time.time() - started) / 60:.1f} min; written to "
        f"{table_dir}/table.md, results.json, table.png", flush=True)
  if failures:
    raise SystemExit(f"{len(failures)} run(s) failed: {', '.join(failures)}")


if __name__ == "__main__":
  app.run(cli.guarded(main))
