"""The ablation-table machinery (#8): every row's config, the scale knob, the runner's table."""
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from t5mtf import config_gin
from t5mtf.data import mixing, registry
from t5mtf.experiments import experiment, paper, tables
from t5mtf.experiments import __main__ as runner

ROW_FILES = sorted(glob.glob(os.path.join(config_gin.GIN_DIR, "experiments", "table*", "*.gin")))
TINY_NOT_RUN = {"RealNews-like"}  # No shipped stand-in: the row says so instead of running.


def test_every_table_with_experiments_has_rows():
  tables_with_rows = {int(os.path.basename(os.path.dirname(f))[5:]) for f in ROW_FILES}
  assert tables_with_rows == {1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}  # 3: examples.
  assert len(ROW_FILES) == 76


def test_every_row_has_the_papers_numbers_under_its_label():
  """The labels in gin/experiments and in t5mtf/experiments/paper.py must agree, or a table
  would print without the paper's numbers beside it."""
  for path in ROW_FILES:
    label, _ = runner.row_info(path)
    table = int(path.split("table")[1][:2])
    assert label in paper.NUMBERS[table], (path, label)
  assert paper.NUMBERS[2]["Encoder-decoder, Denoising"] == paper.NUMBERS[1]["Baseline average"]


@pytest.mark.parametrize("path", ROW_FILES, ids=lambda p: p.split("experiments/")[1])
def test_row_builds_at_both_scales(path):
  for scale_name in ("paper", "tiny"):
    exp, scale = experiment.load([path, f"scales/{scale_name}.gin"])
    assert exp.table == int(path.split("table")[1][:2])
    model = experiment.model_config(exp, scale)
    if scale_name == "tiny" and exp.row in TINY_NOT_RUN:
      with pytest.raises(ValueError, match="no stand-in for pre-training data set 'realnews'"):
        scale.corpus(exp.pretrain_corpus)
      continue
    if scale_name == "paper" and exp.pretrain_corpus == "wikipedia_tbc":
      continue  # TBC has no public builder; the scale has no corpus for it, and says so.
    registry.get_task(f"{scale.corpus(exp.pretrain_corpus)}_{exp.pretrain_objective}")
    for bench in scale.benchmarks:
      registry.get_mixture_or_task(bench)
    if exp.size == "base" and scale_name == "paper" and exp.layers_factor == 1.0 and \
       exp.architecture == "encoder_decoder" and not exp.adapter_dim:
      assert model.num_params() == 222_903_552  # T5-Base, as released.


def test_table2_rows_are_the_papers_architectures():
  """§3.2.2: enc-dec 2P, shared P, 6 layers P (M/2), decoder-only LM / prefix LM P."""
  got = {}
  for path in sorted(glob.glob(os.path.join(config_gin.GIN_DIR, "experiments", "table02", "*"))):
    exp, scale = experiment.load([path, "scales/paper.gin"])
    m = experiment.model_config(exp, scale)
    got[exp.row] = (m.architecture, m.num_encoder_layers, m.num_decoder_layers)
  assert got["Encoder-decoder, Denoising"] == ("encoder_decoder", 12, 12)
  assert got["Enc-dec, shared, LM"] == ("encoder_decoder_shared", 12, 12)
  assert got["Enc-dec, 6 layers, Denoising"] == ("encoder_decoder", 6, 6)
  assert got["Language model, LM"] == ("lm", 0, 12)
  assert got["Prefix LM, Denoising"] == ("prefix_lm", 0, 12)


def test_gin_typo_in_an_experiment_names_it(tmp_path):
  bad = tmp_path / "row.gin"
  bad.write_text("Experiment.pretrain_objectiv = 'x'\n")
  with pytest.raises(config_gin.GinConfigError, match="pretrain_objectiv"):
    experiment.load([str(bad), "scales/tiny.gin"])


def test_objective_rate_and_span_from_task_names():
  assert experiment.objective_rate_span("iid_replace_spans") == (0.15, 1.0)
  assert experiment.objective_rate_span("iid_replace_spans_r50") == (0.5, 1.0)
  assert experiment.objective_rate_span("span_corruption") == (0.15, 3.0)
  assert experiment.objective_rate_span("span_corruption_r15_s10") == (0.15, 10.0)


def test_mixing_rates_follow_section_3_5_2():
  sst2 = registry.get_task("glue_sst2_local")
  cb = registry.get_task("super_glue_cb_local")
  unsup = registry.get_task("local_c4_iid_replace_spans")
  n_sst2, n_cb = sst2.num_input_examples("train"), cb.num_input_examples("train")
  prop = mixing.rate_fn("proportional:2**11", 2**21, unbounded=(unsup.name,))
  assert prop(sst2) == min(n_sst2, 2**11) and prop(cb) == n_cb
  assert prop(unsup) == 2**11  # C4 is bigger than any K.
  temp = mixing.rate_fn("temperature:4", 2**21, unbounded=(unsup.name,))
  assert temp(cb) == pytest.approx(n_cb ** 0.25)
  assert temp(unsup) == pytest.approx((2**21) ** 0.25)
  assert mixing.rate_fn("equal")(cb) == 1.0
  with pytest.raises(ValueError, match="mixing 'proportional': use proportional:K"):
    mixing.rate_fn("proportional")


def test_truncated_pretraining_data_repeats_the_same_pieces():
  """Table 9: the run sees only the first N tokens' worth of pieces, over and over (read through
  the LM objective, whose targets are the raw pieces; denoising draws fresh noise each repeat)."""
  exp = experiment.Experiment(table=9, row="t9 test", data_repeats=64)
  scale = experiment.Scale(name="t", inputs_length=64, supervised_tasks=("super_glue_cb_local",))
  names = experiment.register_row_tasks(exp, scale, "local_c4_lm", pretrain_tokens=200)
  task = registry.get_task(names["unsupervised"])
  ds = task.get_dataset({"inputs": 64, "targets": 64}, shuffle=False).take(12)
  pieces = [tuple(ex["targets"].tolist()) for ex in ds.as_numpy_iterator()]
  assert sum(len(p) for p in set(pieces)) <= 200 and len(set(pieces)) >= 2
  assert pieces[:len(set(pieces))] == pieces[len(set(pieces)):2 * len(set(pieces))]  # Repeats.
  full = registry.get_task("local_c4_lm").get_dataset(
      {"inputs": 64, "targets": 64}, shuffle=False).take(12)
  assert len({tuple(ex["targets"].tolist()) for ex in full.as_numpy_iterator()}) == 12


def test_c4_stand_in_keeps_only_lines_of_the_raw_pages():
  from t5mtf.data.tasks import pretraining
  raw = pretraining.STAND_IN_CORPORA["local_web_unfiltered"]().rows("train")
  cleaned = pretraining.STAND_IN_CORPORA["local_c4"]().rows("train")
  raw_lines = {line.strip() for r in raw for line in r["text"].splitlines()}
  assert 0 < len(cleaned) < len(raw)
  for row in cleaned:
    for line in row["text"].splitlines():
      assert line in raw_lines or any(line in r for r in raw_lines)  # Citations are stripped.


def _result(glue, loss=3.0):
  """A results.json as run() writes it, with made-up scores (these tests check the table's
  arithmetic, not a model)."""
  return {"seconds": 60.0, "results": {
      "averages": {"glue_average": glue, "super_glue_average": glue / 2},
      "cnn_dailymail_local": {"rouge2": 1.0}, "translate_en_de_local": {"bleu": 2.0},
      "heldout": {"loss": loss}}}


def test_summary_bold_and_directions():
  base, worse, close = ("Encoder-decoder, Denoising", "Language model, LM",
                        "Prefix LM, Denoising")  # Table 2 rows, with made-up scores.
  rows = [(base, tables.summarize([_result(50.0, 3.0), _result(52.0, 3.1), _result(54.0, 3.2)])),
          (worse, tables.summarize([_result(40.0, 4.0), _result(41.0, 4.1), _result(42.0, 4.2)])),
          (close, tables.summarize([_result(48.0, 2.9), _result(49.0, 3.0), _result(50.0, 3.1)]))]
  mean, std, n = rows[0][1]["GLUE"]
  assert (mean, n) == (52.0, 3) and std == pytest.approx(2.0)
  bold = tables.bold_cells(rows, base)
  assert bold["GLUE"] == {base, close}  # 49 >= 52 - 2*2; 41 is not.
  assert bold["CNNDM"] == {base, worse, close}  # All tied.
  assert bold["Loss"] == {base, close}  # Lower is better: 3.1 <= 3.0 + 2*0.1; 4.1 is not.
  lines = tables.directions(2, rows, base)
  assert lines[0] == (f"- {worse}: paper below the baseline; here below (held-out loss 4.100 vs "
                      "3.100): held.")
  assert lines[1].endswith("here above (held-out loss 3.000 vs 3.100): did not hold.")
  assert "EnFr" not in tables.markdown(2, rows, base)  # Only evaluated columns are shown.


def test_paper_numbers_give_the_direction():
  assert paper.expected_direction(1, "No pre-training", "Baseline average") == "below"
  assert paper.expected_direction(13, "4x ensembled", "Baseline") == "above"
  assert paper.expected_direction(4, "BERT-style", None) is None  # Table 4 has no baseline row.


def test_a_table_without_a_baseline_is_judged_against_the_papers_best_row():
  """Table 4 has no baseline: the paper ranks BERT-style best (82.96 GLUE), so each other row's
  direction is 'below' it, checked by our held-out loss (made-up scores here)."""
  bert, prefix, deshuffle = "BERT-style", "Prefix language modeling", "Deshuffling"
  rows = [(prefix, tables.summarize([_result(50.0, 3.2)])),
          (bert, tables.summarize([_result(50.0, 3.0)])),
          (deshuffle, tables.summarize([_result(50.0, 2.9)]))]
  assert paper.best_row(4, [prefix, deshuffle]) == prefix
  assert tables.reference_row(4, rows, None) == bert
  checks = tables.direction_checks(4, rows, None)
  assert [(c["row"], c["expected"], c["ours"]) for c in checks] == [
      (prefix, "below", "below"), (deshuffle, "below", "above")]
  assert tables.held_count(checks) == (1, 2)
  lines = tables.directions(4, rows, None)
  assert "judged against BERT-style" in lines[0]
  assert lines[2].endswith("here above (held-out loss 2.900 vs 3.000): did not hold.")
  assert tables.reference_row(4, rows[:1], None) == prefix  # Only what ran can be the reference.


def test_runner_skips_finished_rows_and_writes_the_table(tmp_path, monkeypatch):
  files = runner.row_files(1)
  for i, path in enumerate(files):
    d = tmp_path / os.path.basename(path)[:-4] / "seed0"
    d.mkdir(parents=True)
    (d / "results.json").write_text(json.dumps(_result(60.0 - 10 * i, 3.0 + i)))
  monkeypatch.setattr(subprocess, "call", lambda *a, **k: pytest.fail("must not run"))
  assert runner.run_row(files[0], "tiny", 0, str(tmp_path / "01_baseline" / "seed0"), []) == "done"
  text = runner.write_table(1, "tiny", str(tmp_path), files, 1)
  assert "| Baseline average ★ | **60.00**" in text
  assert "No pre-training: paper below the baseline; here below (" in text
  assert "66.22" in text  # The paper's numbers are printed beside ours.
  for name in ("table.md", "results.json", "table.png"):
    assert (tmp_path / name).stat().st_size > 0


@pytest.mark.slow
def test_one_row_runs_end_to_end(tmp_path):
  """Table 1's no-pre-training row at a sliver of the tiny scale, through the row process."""
  out = tmp_path / "row"
  path = runner.row_files(1)[1]
  code = subprocess.call([sys.executable, "-m", "t5mtf.experiments.run_row", f"--gin_file={path}",
                          "--gin_file=scales/tiny.gin", "--seed=1", f"--output_dir={out}",
                          "--gin_param=Scale.finetune_steps=4",
                          "--gin_param=Scale.eval_max_examples=2"])
  assert code == 0
  result = json.loads((out / "results.json").read_text())
  assert result["row"] == "No pre-training" and result["seed"] == 1
  assert not (out / "pretrain").exists()
  assert {"cnn_dailymail_local", "glue_sst2_local", "translate_en_de_local"} <= set(
      result["results"])
  assert np.isfinite(result["results"]["cnn_dailymail_local"]["rouge2"])
  held = result["results"]["heldout"]
  assert held["tokens"] > 0 and 0 < held["loss"] < 20  # ln(32128) = 10.4 for a uniform guess.


@pytest.mark.slow
def test_ensemble_row_runs_members_and_scores_their_average(tmp_path):
  """Table 13's "4x ensembled, fine-tune only" at a sliver of the tiny scale (2 members)."""
  out = tmp_path / "row"
  path = [f for f in runner.row_files(13) if "finetune_only" in f][0]
  code = subprocess.call([sys.executable, "-m", "t5mtf.experiments.run_row", f"--gin_file={path}",
                          "--gin_file=scales/tiny.gin", f"--output_dir={out}",
                          "--gin_param=Experiment.ensemble=2",
                          "--gin_param=Scale.pretrain_steps=3", "--gin_param=Scale.finetune_steps=3",
                          "--gin_param=Scale.eval_max_examples=2"])
  assert code == 0
  bench = "default_finetune_local"
  assert sorted(p.name for p in out.iterdir()) == ["ensemble", "member_0", "member_1", "pretrain",
                                                   "results.json"]
  members = json.loads((out / "ensemble" / bench / "ensemble" / "members.json").read_text())
  assert [os.path.dirname(m) for m in members] == [str(out / f"member_{k}" / "finetune" / bench)
                                                  for k in range(2)]
  result = json.loads((out / "results.json").read_text())
  assert "translate_en_de_local" in result["results"]


def test_table3_shows_every_objective_on_the_papers_sentence():
  from t5mtf.experiments import table3
  seed, rows = table3.first_telling_seed()
  by_name = {name: (inputs, targets) for name, inputs, targets in rows}
  assert set(by_name) == set(table3.ROWS)
  sentence = table3.SENTENCE
  for name in ("bert_style", "deshuffling", "mass_style"):
    assert by_name[name][1] == sentence and by_name[name][0] != sentence  # Target: the original.
  inputs, targets = by_name["prefix_lm"]
  assert f"{inputs} {targets}" == sentence
  shuffled = by_name["deshuffling"][0]  # A permutation of the tokens: same characters.
  assert sorted(shuffled.replace(" ", "")) == sorted(sentence.replace(" ", ""))
  assert "<extra_id_0>" in by_name["iid_replace_spans"][0]
  assert "| span_corruption |" in table3.markdown()


def test_table16_lists_every_task_of_every_finished_row(tmp_path):
  for table, name in ((1, "01_baseline"), (2, "04_lm_denoising")):
    d = tmp_path / f"table{table:02d}" / name / "seed0"
    d.mkdir(parents=True)
    result = _result(50.0 + table)
    result["results"]["glue_sst2_local"] = {"accuracy": 80.0 + table}
    (d / "results.json").write_text(json.dumps(result))
  text = runner.write_table16(str(tmp_path))
  assert "| T1: Baseline average |" in text and "| T2: Language model, Denoising |" in text
  assert "glue_sst2_local accuracy" in text and "82.00" in text
  assert (tmp_path / "table16.md").exists()


def test_table8_says_which_stand_in_each_data_set_is():
  note = runner.data_set_note("tiny")
  assert "c4 -> local_c4" in note and "wikipedia_tbc -> local_wiki_books" in note
  assert "c4 -> c4_v220" in runner.data_set_note("paper")


@pytest.mark.slow
@pytest.mark.parametrize("row, subdirs", [
    ("02_multitask", {"multitask"}),
    ("04_leave_one_out", {"finetune", "pretrain_without_glue_rte_local",
                          "pretrain_without_super_glue_cb_local"})])
def test_multitask_rows_run_end_to_end(tmp_path, row, subdirs):
  """Table 12's multi-task and leave-one-out rows at a sliver of the tiny scale, with two tasks."""
  out = tmp_path / "row"
  path = [f for f in runner.row_files(12) if row in f][0]
  code = subprocess.call([sys.executable, "-m", "t5mtf.experiments.run_row", f"--gin_file={path}",
                          "--gin_file=scales/tiny.gin", f"--output_dir={out}",
                          "--gin_param=Scale.pretrain_steps=2", "--gin_param=Scale.finetune_steps=2",
                          "--gin_param=Scale.eval_max_examples=2",
                          "--gin_param=Scale.supervised_tasks=('glue_rte_local', "
                          "'super_glue_cb_local')"])
  assert code == 0
  assert subdirs <= {p.name for p in out.iterdir()}
  result = json.loads((out / "results.json").read_text())
  if row == "02_multitask":  # §3.5.2: as many steps as pre-training and fine-tuning together.
    from t5mtf.train import checkpoints
    assert checkpoints.latest_step(str(out / "multitask")) == 4
    assert "translate_en_de_local" in result["results"]  # Evaluated on every benchmark task.
  else:  # Each left-out task is fine-tuned and evaluated on its own.
    assert {"glue_rte_local", "super_glue_cb_local"} <= set(result["results"])


@pytest.mark.parametrize("row", ["table07/01_iid.gin", "table07/03_span3.gin",
                                 "table06/01_rate10.gin"])
def test_pretraining_rows_trim_no_example_at_tiny_scale(row):
  """The lengths the runner picks for a row's objective keep every example whole (the i.i.d.
  objectives get targets = inputs, as the released defaults did); the pipeline counts any
  trimmed example, so a cut would show here."""
  from t5mtf.data import preprocessors
  exp, scale = experiment.load([f"experiments/{row}", "scales/tiny.gin"])
  lengths = experiment.pretrain_lengths(exp, scale)
  task = registry.get_task(f"{scale.corpus(exp.pretrain_corpus)}_{exp.pretrain_objective}")
  before = preprocessors.trimmed_report().get(f"{task.name}/targets", 0)
  ds = task.get_dataset({"inputs": lengths[0], "targets": lengths[1]}, "train", shuffle=False,
                        num_epochs=None)
  assert sum(1 for _ in ds.take(400).as_numpy_iterator()) == 400
  assert preprocessors.trimmed_report().get(f"{task.name}/targets", 0) == before


def test_trimmed_examples_are_counted():
  from t5mtf.data import preprocessors
  task = registry.get_task("local_iid_replace_spans")
  before = preprocessors.trimmed_report().get("local_iid_replace_spans/targets", 0)
  one_epoch = {"inputs": 128, "targets": 20}
  sum(1 for _ in task.get_dataset(one_epoch, "train", shuffle=False).as_numpy_iterator())
  after = preprocessors.trimmed_report()["local_iid_replace_spans/targets"]
  # The same epoch untrimmed (no lengths): targets with more than 19 tokens + EOS were cut.
  untrimmed = task.get_dataset({"inputs": 128}, "train", shuffle=False)
  too_long = sum(1 for ex in untrimmed.as_numpy_iterator() if len(ex["targets"]) > 20)
  assert too_long > 0 and after - before == too_long


def test_identical_trainings_are_shared_across_rows_and_tables(tmp_path, monkeypatch):
  """Rows whose pre-training (or fine-tuning) settings are identical train once; a row whose
  pre-training differs (another seed, no pre-training) trains its own. Training and evaluation
  are replaced by stand-ins that write a checkpoint-like marker (this checks the keys and the
  bookkeeping, not a model)."""
  from t5mtf.train import loop
  trained = []

  def fake_train(settings):
    trained.append((settings.mixture_or_task_name, settings.seed, settings.init_checkpoint))
    os.makedirs(settings.model_dir, exist_ok=True)
  monkeypatch.setattr(loop, "train", fake_train)
  monkeypatch.setattr(experiment, "_evaluate_once", lambda s, scale: ({"t": {"m": 1.0}}, 2.0, 4))
  shared = str(tmp_path / "shared")

  def run(table, row, seed=0):
    exp, scale = experiment.load([runner.row_files(table)[row], "scales/tiny.gin"])
    return experiment.run(exp, scale, seed, str(tmp_path / f"t{table}r{row}s{seed}"),
                          shared_dir=shared)
  first = run(1, 0)
  assert [t["reused"] for t in first["trainings"]] == [False, False]  # Pre-train, fine-tune.
  again = run(13, 0)  # Table 13's baseline: the same runs, and the same evaluation.
  assert [t["reused"] for t in again["trainings"]] == [True, True, True]
  assert again["seconds_unshared"] > again["seconds"]
  assert again["results"]["heldout"] == first["results"]["heldout"]
  assert len(trained) == 2
  run(1, 0, seed=1)  # Another seed: its own pre-training and fine-tuning.
  run(1, 1)  # No pre-training: fine-tuning from scratch differs from fine-tuning the baseline's.
  assert len(trained) == 5 and len(os.listdir(shared)) == 5
  assert trained[1][2].startswith(shared) and trained[4][2] == ""


PUBLISHED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results",
                         "tiny")


def test_published_tables_agree_with_their_rows_and_the_summary():
  """results/tiny/ is written by the runner only: each table's results.json holds what its rows'
  results.json files give, and README.md is the summary of those tables."""
  tables_run = sorted(glob.glob(os.path.join(PUBLISHED, "table[0-9][0-9]", "results.json")))
  assert tables_run, "results/tiny/ has no table"
  for path in tables_run:
    with open(path) as f:
      table = json.load(f)
    files = runner.row_files(table["table"])
    rows, baseline, skipped, runs = runner.collect(os.path.dirname(path), files, table["seeds"])
    assert baseline == table["baseline"]
    assert {label: {c: list(v) for c, v in s.items()} for label, s in rows} == {
        label: r["summary"] for label, r in table["rows"].items()}
    assert dict(skipped) == table["skipped"]
    assert runner.not_run_yet(files, runs, skipped) == table.get("to_run", [])
    held, checked = tables.held_count(tables.direction_checks(table["table"], rows, baseline))
    assert (held, checked) == (table["directions"]["held"], table["directions"]["checked"])
  with open(os.path.join(PUBLISHED, "README.md")) as f:
    assert f.read() == runner.summary_text(PUBLISHED)


def test_training_key_ignores_fields_at_their_defaults():
  """A field added to RunSettings later (at a default that keeps behaviour) must not change the
  keys of trainings already shared; any value that matters does."""
  import dataclasses
  from t5mtf.train import settings as settings_lib
  exp, scale = experiment.load([runner.row_files(1)[0], "scales/tiny.gin"])
  model = experiment.model_config(exp, scale)
  s = experiment._settings("/tmp/a", "local_c4_iid_replace_spans", model, scale, 0, 200, 128,
                           128, 16)

  @dataclasses.dataclass
  class Later(settings_lib.RunSettings):
    added_later: int = 0
  later = Later(**{f.name: getattr(s, f.name) for f in dataclasses.fields(s)})
  key = experiment.training_key(s, scale)
  assert experiment.training_key(later, scale) == key
  assert experiment.training_key(dataclasses.replace(s, model_dir="/elsewhere"), scale) == key
  for changed in (dataclasses.replace(s, seed=1), dataclasses.replace(s, train_steps=100),
                  dataclasses.replace(later, added_later=1),
                  dataclasses.replace(s, model=dataclasses.replace(model, d_ff=128))):
    assert experiment.training_key(changed, scale) != key


def test_gin_includes_resolved_under_the_gin_dir_log_no_error(caplog):
  """gin logs ERROR "Path not found" for every include it first looks for as a Python package;
  config_gin filters exactly that record, so a run that loads fine prints no error line."""
  import logging
  files = [os.path.join(config_gin.GIN_DIR, "experiments", "table15", "01_baseline.gin"),
           "scales/tiny.gin"]

  def errors():
    caplog.clear()
    with caplog.at_level(logging.ERROR):
      experiment.load(files)
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
  assert errors() == []
  logging.getLogger().removeFilter(config_gin._not_a_missed_include)
  try:  # Without the filter gin's record is there: the include does go through that path.
    assert any("Path not found: experiments/baseline.gin" in m for m in errors())
  finally:
    logging.getLogger().addFilter(config_gin._not_a_missed_include)


def test_shared_trainings_checkpoint_periodically_under_the_same_key(tmp_path, monkeypatch):
  """A shared training saves every RESUME_EVERY_STEPS (a stopped sweep resumes inside a long
  one), while its key, and so the reuse of trainings already made, stays what it was."""
  from t5mtf.train import loop
  exp, scale = experiment.load([runner.row_files(15)[1], "scales/tiny.gin"])
  model = experiment.model_config(exp, scale)
  s = experiment._settings("/tmp/a", "local_c4_iid_replace_spans", model, scale, 0, 6400, 128,
                           128, 16)
  assert s.save_checkpoints_steps == 6400  # The scale's cadence: only at the end.
  trained = []
  monkeypatch.setattr(loop, "train", lambda run: (trained.append(run),
                                                  os.makedirs(run.model_dir)))
  used = experiment.Trainer(str(tmp_path)).train(s, scale, "pre-training")
  assert trained == [used]
  assert used.save_checkpoints_steps == experiment.RESUME_EVERY_STEPS < 6400
  assert os.path.basename(used.model_dir) == experiment.training_key(s, scale)
  assert experiment.training_key(used, scale) != experiment.training_key(s, scale)  # Keyed
  # on the settings as the row asked for them, not as run.
