"""Downstream formats on real fixture rows (official file formats), exact strings."""
import pytest
import tensorflow as tf

from t5mtf.data import sources as src
from t5mtf.data import registry
from t5mtf.data.tasks import downstream, formats, local_sources

FIX = "data/tasks/fixtures"


def first(preprocessor, source, split="train"):
  ds = preprocessor(source.get_dataset(split))
  ex = next(iter(ds.as_numpy_iterator()))
  return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in ex.items()}


def tsv(path, columns, header=True):
  return src.DelimitedSource({"train": f"{FIX}/{path}"}, columns, has_header=header,
                             quoting=False)


GLUE_CASES = [
    ("cola", tsv("glue/cola/CoLA/train.tsv", {"sentence": 3, "label": 1}, header=False),
     "cola sentence: Our friends won't buy this analysis, let alone the next one we propose.",
     "acceptable"),
    ("sst2", tsv("glue/sst2/SST-2/train.tsv", {"sentence": "sentence", "label": "label"}),
     "sst2 sentence: hide new secretions from the parental units", "negative"),
    ("mnli", tsv("glue/mnli/MNLI/train.tsv", {"premise": "sentence1", "hypothesis": "sentence2",
                                              "label": "gold_label"}),
     "mnli hypothesis: Product and geography are what make cream skimming work. premise: "
     "Conceptually cream skimming has two basic dimensions - product and geography.",
     "neutral"),
    ("qnli", tsv("glue/qnli/QNLI/train.tsv", {"question": "question", "sentence": "sentence",
                                              "label": "label"}),
     "qnli question: When did the third Digimon series begin? sentence: Unlike the two seasons "
     "before it and most of the seasons that followed, Digimon Tamers takes a darker and more "
     "realistic approach to its story featuring Digimon who do not reincarnate after their "
     "deaths and more complex character development in the original Japanese.",
     "not_entailment"),
    ("qqp", tsv("glue/qqp/QQP/train.tsv", {"question1": "question1", "question2": "question2",
                                           "label": "is_duplicate"}),
     "qqp question1: How is the life of a math student? Could you describe your own "
     "experiences? question2: Which level of prepration is enough for the exam jlpt5?",
     "not_duplicate"),
    ("rte", tsv("glue/rte/RTE/train.tsv", {"sentence1": "sentence1", "sentence2": "sentence2",
                                           "label": "label"}),
     "rte sentence1: No Weapons of Mass Destruction Found in Iraq Yet. sentence2: Weapons of "
     "Mass Destruction Found in Iraq.", "not_entailment"),
    ("wnli", tsv("glue/wnli/WNLI/train.tsv", {"sentence1": "sentence1", "sentence2": "sentence2",
                                              "label": "label"}),
     "wnli sentence1: I stuck a pin through a carrot. When I pulled the pin out, it had a hole. "
     "sentence2: The carrot had a hole.", "entailment"),
]


@pytest.mark.parametrize("name,source,inputs,targets", GLUE_CASES, ids=[c[0] for c in GLUE_CASES])
def test_glue_formats(name, source, inputs, targets):
  features, labels, _ = downstream.GLUE[name]
  ex = first(formats.glue(name, features, labels), source)
  assert (ex["inputs"], ex["targets"]) == (inputs, targets)


def test_stsb_rounds_to_nearest_point_two():
  source = tsv("glue/stsb/SST-B/train.tsv", {"sentence1": "sentence1", "sentence2": "sentence2",
                                             "label": "score"})
  ex = first(formats.stsb(), source)
  assert ex["inputs"] == "stsb sentence1: A plane is taking off. sentence2: An air plane is " \
                         "taking off."
  assert ex["targets"] == "5.0"
  got = [formats.stsb_score_to_text(tf.constant(x)).numpy().decode()
         for x in (2.57, 0.0, 3.1, 4.99, 1.5)]
  assert got == ["2.6", "0.0", "3.2", "5.0", "1.6"]


def test_superglue_formats_on_fixtures():
  sg = lambda t, fields: src.JsonlSource({"train": f"{FIX}/super_glue/{t}/train.jsonl"}, fields)
  cb = first(formats.glue("cb", *downstream.SUPER_GLUE["cb"][:2]),
             sg("CB", {"premise": "premise", "hypothesis": "hypothesis", "label": "label"}))
  assert cb["inputs"] == ("cb hypothesis: the language was peeled down premise: It was a "
                          "complex language. Not written down but handed down. One might say "
                          "it was peeled down.")
  assert cb["targets"] == "entailment"
  copa = first(formats.glue("copa", *downstream.SUPER_GLUE["copa"][:2]),
               sg("COPA", {k: k for k in ("premise", "choice1", "choice2", "question",
                                          "label")}))
  assert copa["inputs"] == ("copa choice1: The sun was rising. choice2: The grass was cut. "
                            "premise: My body cast a shadow over the grass. question: cause")
  assert copa["targets"] == "choice1"


def test_wsc_marks_the_pronoun():
  source = src.JsonlSource({"train": f"{FIX}/super_glue/WSC/train.jsonl"},
                           row_fn=local_sources._wsc_rows)
  ex = first(formats.wsc(), source)
  assert ex["inputs"] == ("wsc: Mark told Pete many lies about himself, which Pete included in "
                          "his book. *He* should have been more skeptical.")
  assert ex["targets"] == "Mark" and ex["label"] == "False"


def test_wsc_trains_only_on_true_examples():
  task = registry.get_task("super_glue_wsc_local")
  train = list(task.get_dataset(None, "train", shuffle=False).as_numpy_iterator())
  val = list(task.get_dataset(None, "validation", shuffle=False).as_numpy_iterator())
  assert train and all(e["label"] == b"True" for e in train)
  assert {e["label"] for e in val} == {b"True", b"False"}


def test_translation_and_summary_prefixes():
  ex = first(formats.translate("en", "de"),
             src.FunctionSource(lambda s: tf.data.Dataset.from_tensors(
                 {"en": "That is good.", "de": "Das ist gut."}), ["train"]))
  assert ex == {"inputs": "translate English to German: That is good.",
                "targets": "Das ist gut."}


def test_squad_format_and_answers():
  task = registry.get_task("squad_v010_local")
  ex = next(task.get_dataset(None, "validation", shuffle=False).as_numpy_iterator())
  assert ex["inputs_pretokenized"].decode().startswith(
      "question: In what country is Normandy located? context: The Normans (Norman:")
  assert ex["targets_pretokenized"] == b"France"


def test_record_one_training_example_per_answer():
  task = registry.get_task("super_glue_record_local")
  raw = local_sources.super_glue()["record"].rows("train")
  n_answers = sum(len(r["answers"].split(formats.LIST_SEPARATOR)) for r in raw)
  train = list(task.get_dataset(None, "train", shuffle=False).as_numpy_iterator())
  assert len(train) == n_answers
  assert train[0]["inputs_pretokenized"].decode().startswith("record query: ")


def test_label_outside_label_set_names_file_and_row(tmp_path):
  f = tmp_path / "train.tsv"
  f.write_text("sentence\tlabel\ngood\t1\nbad\t7\n")
  source = src.DelimitedSource({"train": str(f)}, {"sentence": "sentence", "label": "label"},
                               quoting=False).with_valid_values(label={"0", "1"})
  with pytest.raises(src.SourceError, match=r"train.tsv: example 2: label '7' is not one of"):
    source.get_dataset("train")


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


def test_wnli_in_winograd_format_on_real_rows():
  task = registry.get_task("glue_wnli_winograd_local")
  exs = list(task.get_dataset(None, "train", shuffle=False).as_numpy_iterator())
  first = exs[0]
  assert first["inputs_pretokenized"].decode() == (
      "wsc: I stuck a pin through a carrot. When I pulled the pin out, *it* had a hole.")
  assert first["targets_pretokenized"] == b"The carrot" and first["label"] == b"True"
  assert len(exs) >= 0.95 * task.num_input_examples("train")  # Nearly all rows align.


def test_tfds_tasks_name_the_papers_builders_and_mix_proportionally():
  assert registry.get_task("glue_cola_v002").source.name == "glue/cola:2.0.0"
  assert registry.get_task("super_glue_wsc_v102").source.name == "super_glue/wsc.fixed:1.0.2"
  assert registry.get_task("squad_v010").source.name == "squad/v1.1:3.0.0"
  assert registry.get_task("glue_mnli_v002").splits[1:3] == ("validation_matched",
                                                             "validation_mismatched")
  rates = registry.get_mixture_or_task("glue_v002_proportional").rates()
  assert rates[list(downstream.GLUE).index("mnli")] == 392702


def test_errors_name_the_task(clean_registry, tmp_path):
  f = tmp_path / "t.tsv"
  f.write_text("sentence\tlabel\n")
  registry.add_task(registry.Task("broken_task", src.DelimitedSource(
      {"train": str(f)}, {"sentence": "sentence", "label": "label"}), []))
  with pytest.raises(src.SourceError, match="task broken_task: .*has no rows"):
    registry.get_task("broken_task").get_dataset(None)


def test_dpr_format_on_a_written_example():
  """A sentence written for this test (DPR itself is not shipped), in TFDS's DPR features."""
  ex = {"sentence": "The bee landed on the flower because it had pollen.", "pronoun": "it",
        "candidates": ["The bee", "the flower"], "label": 1}
  ds = tf.data.Dataset.from_tensors({k: tf.constant(v) for k, v in ex.items()})
  got = next(iter(formats.dpr()(ds).as_numpy_iterator()))
  assert got["inputs"].decode() == "wsc: The bee landed on the flower because *it* had pollen."
  assert got["targets"] == b"the flower"
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


def _sg_first(task, local_name, fields=None, row_fn=None, preprocessor=None):
  source = src.JsonlSource({"train": f"{FIX}/super_glue/{task}/train.jsonl"}, fields, row_fn)
  if preprocessor is None:
    feature_names, labels, _ = downstream.SUPER_GLUE[local_name]
    preprocessor = formats.glue(local_name, feature_names, labels)
  return first(preprocessor, source)


def test_mrpc_wic_rte_exact_strings_on_fixtures():
  mrpc = first(formats.glue("mrpc", *downstream.GLUE["mrpc"][:2]),
               tsv("glue/mrpc/MRPC/train", {"sentence1": 3, "sentence2": 4, "label": 0}))
  assert mrpc["inputs"] == (
      'mrpc sentence1: Amrozi accused his brother , whom he called " the witness " , of '
      'deliberately distorting his evidence . sentence2: Referring to him as only " the '
      'witness " , Amrozi accused his brother of deliberately distorting his evidence .')
  assert mrpc["targets"] == "equivalent"
  wic = _sg_first("WiC", "wic", {k: k for k in ("sentence1", "sentence2", "word", "label")})
  assert wic["inputs"] == ("wic sentence1: Do you want to come over to my place later? "
                           "sentence2: A political system with no place for the less prominent "
                           "groups. word: place")
  assert wic["targets"] == "False"
  rte = _sg_first("RTE", "rte", {"premise": "premise", "hypothesis": "hypothesis",
                                 "label": "label"})
  assert rte["inputs"] == ("rte hypothesis: Weapons of Mass Destruction Found in Iraq. premise: "
                           "No Weapons of Mass Destruction Found in Iraq Yet.")
  assert rte["targets"] == "not_entailment"


def test_boolq_multirc_record_exact_strings_on_fixtures():
  boolq = _sg_first("BoolQ", "boolq", {"passage": "passage", "question": "question",
                                       "label": "label"})
  assert boolq["inputs"].startswith("boolq passage: Persian language -- Persian (/")
  assert boolq["inputs"].endswith(" question: do iran and afghanistan speak the same language")
  import json
  with open(f"{FIX}/super_glue/MultiRC/train.jsonl") as f:
    obj = json.loads(f.readline())
  q, a = obj["passage"]["questions"][0], obj["passage"]["questions"][0]["answers"][0]
  multirc = _sg_first("MultiRC", None, row_fn=local_sources._multirc_rows,
                      preprocessor=formats.glue("multirc", ["answer", "paragraph", "question"],
                                                ["False", "True"]))
  assert multirc["inputs"] == " ".join(["multirc answer:", a["text"].strip(), "paragraph:",
                                        obj["passage"]["text"].strip(), "question:",
                                        q["question"].strip()])
  assert multirc["targets"] == ("True" if a["label"] else "False")
  with open(f"{FIX}/super_glue/ReCoRD/train.jsonl") as f:
    obj = json.loads(f.readline())
  record = _sg_first("ReCoRD", None, row_fn=local_sources._record_rows,
                     preprocessor=formats.record())
  qa = obj["qas"][0]
  assert record["inputs"].startswith("record query: " + qa["query"] + " entities: ")
  assert " passage: The harrowing stories of women and children" in record["inputs"]
  assert "@highlight" not in record["inputs"]
  assert record["targets"] == qa["answers"][0]["text"]


def test_cnn_dailymail_and_translation_exact_strings_on_shipped_rows():
  cnn = next(registry.get_task("cnn_dailymail_local").get_dataset(None, "train", shuffle=False)
             .as_numpy_iterator())
  assert cnn["inputs_pretokenized"].decode().startswith(
      "summarize: By . Associated Press . PUBLISHED: . 14:11 EST, 25 October 2013 .")
  assert cnn["targets_pretokenized"].decode().startswith(
      "Bishop John Folda, of North Dakota, is taking time off after being diagnosed . He")
  ro = next(registry.get_task("translate_en_ro_wmt16_local").get_dataset(
      None, "validation", shuffle=False).as_numpy_iterator())
  assert ro["inputs_pretokenized"].decode().startswith(
      "translate English to Romanian: Brazil's Former Presidential Chief-of-Staff to Stand Trial")
  assert ro["targets_pretokenized"].decode().startswith(
      "Fostul \u0219ef al cabinetului preziden\u021bial brazilian este adus")
