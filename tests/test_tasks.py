"""The task catalogue: sources, splits, mixtures and errors. Exact formats are checked against
the released code in test_oracle_formats.py."""
import pytest

from t5mtf.data import registry
from t5mtf.data import sources as src
from t5mtf.data.tasks import downstream, local_sources
from t5mtf.train import loop, settings as settings_lib


def test_bad_label_names_file_and_row(tmp_path):
  f = tmp_path / "train.tsv"
  f.write_text("x\ty\ngood\t1\nbad\t7\n")
  source = local_sources.ColumnsSource(
      {"train": str(f)}, {}, {"sentence": "x", "label": "y"},
      lambda r, n: {"sentence": r["sentence"], "label": local_sources._class(r["label"],
                                                                             ["0", "1"])})
  with pytest.raises(src.SourceError, match=r"train.tsv: example 2: label '7' is not one of"):
    source.rows("train")


def test_official_file_with_a_bad_row_is_named(tmp_path):
  f = tmp_path / "train.jsonl"
  f.write_text('{"question": "q", "passage": "p", "idx": 0, "label": true}\n{"idx": 1}\n')
  with pytest.raises(src.SourceError, match=r"train.jsonl: example 2: not a valid "
                                            r"super_glue/boolq row"):
    local_sources.TfdsFileSource("super_glue", "boolq", {"train": str(f)}).rows("train")


def test_local_rows_have_the_tfds_features():
  """Local sources yield what the TFDS builders yield: class indices, int ids, nested ids."""
  wsc = local_sources.super_glue()["wsc"].rows("train")[0]
  assert set(wsc) == {"text", "span1_index", "span2_index", "span1_text", "span2_text", "idx",
                      "label"} and wsc["label"] in (0, 1)
  multirc = local_sources.super_glue()["multirc"].rows("train")[0]
  assert set(multirc["idx"]) == {"paragraph", "question", "answer"}
  stsb = local_sources.glue()["stsb"].rows("train")[0]
  assert isinstance(stsb["label"], float) and stsb["idx"] == 0


def test_every_local_task_loads_both_splits():
  for name in registry.task_names():
    if name.endswith("_local") and not name.startswith("local_"):
      task = registry.get_task(name)
      for split in ("train", "validation"):
        assert task.num_input_examples(split) > 0, (name, split)


def test_moses_detokenize():
  assert local_sources.moses_detokenize(
      "Parliament &apos;s role , it said , is &quot; key &quot; .") == \
      "Parliament's role, it said, is \" key \"."


def test_wsc_trains_only_on_the_referent():
  task = registry.get_task("super_glue_wsc_local")
  train = list(task.get_dataset(None, "train", shuffle=False).as_numpy_iterator())
  val = list(task.get_dataset(None, "validation", shuffle=False).as_numpy_iterator())
  assert train and all(e["label"] == 1 for e in train)
  assert {e["label"] for e in val} == {0, 1}


def test_tfds_tasks_name_the_papers_builders_and_mix_proportionally():
  assert registry.get_task("glue_cola_v002").source.name == "glue/cola:2.0.0"
  assert registry.get_task("super_glue_wsc_v102").source.name == "super_glue/wsc.fixed:1.0.2"
  assert registry.get_task("squad_v010").source.name == "squad/v1.1:3.0.0"
  assert registry.get_task("glue_mnli_v002").splits[1:3] == ("validation_matched",
                                                             "validation_mismatched")
  assert registry.get_task("glue_mnli_matched_v002").source.name == "glue/mnli_matched:2.0.0"
  mixture = registry.get_mixture_or_task("glue_v002_proportional")
  rates = dict(zip([t.name for t in mixture.tasks], mixture.rates()))
  assert rates["glue_mnli_v002"] == 392702
  assert rates["glue_mnli_matched_v002"] == rates["glue_mnli_mismatched_v002"] == 0


def test_mnli_evaluates_on_its_matched_and_mismatched_tasks(tmp_path):
  s = settings_lib.RunSettings(model_dir=str(tmp_path),
                               mixture_or_task_name="glue_v002_proportional")
  names = loop.eval_task_names(s)
  assert "glue_mnli_matched_v002" in names and "glue_mnli_mismatched_v002" in names
  assert "glue_mnli_v002" not in names  # It has no "validation" split.
  alone = settings_lib.RunSettings(model_dir=str(tmp_path), mixture_or_task_name="glue_mnli_v002")
  assert loop.eval_task_names(alone) == ["glue_mnli_matched_v002", "glue_mnli_mismatched_v002"]


def test_errors_name_the_task(clean_registry, tmp_path):
  f = tmp_path / "t.tsv"
  f.write_text("sentence\tlabel\n")
  registry.add_task(registry.Task("broken_task", src.DelimitedSource(
      {"train": str(f)}, {"sentence": "sentence", "label": "label"}), []))
  with pytest.raises(src.SourceError, match="task broken_task: .*has no rows"):
    registry.get_task("broken_task").get_dataset(None)


def test_dpr_is_registered_with_wsc():
  assert registry.get_task("dpr_v001_simple").source.name == "definite_pronoun_resolution:1.1.0"
  assert "dpr_v001_simple" in [t.name for t in
                               registry.get_mixture_or_task("super_glue_wsc_and_dpr").tasks]


def test_training_strategy_mixtures():
  multi = registry.get_mixture_or_task("multitask_local_with_pretraining")
  names = [t.name for t in multi.tasks]
  rates = dict(zip(names, multi.rates()))
  assert rates["local_span_corruption"] == 2**19
  assert rates["glue_sst2_local"] == registry.get_task("glue_sst2_local").num_input_examples(
      "train")
  loo = registry.get_mixture_or_task("leave_one_out_glue_rte_local")
  assert "glue_rte_local" not in [t.name for t in loo.tasks]
  assert len(loo.tasks) == len(names) - 1
  assert downstream.GLUE["mnli"][0] == ["entailment", "neutral", "contradiction"]
