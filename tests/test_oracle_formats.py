"""Task formats against the released code itself (t5==0.9.4 in its own venv, tests/peers/):
every shipped row of every task the paper reports goes through our task and through the
original's registered task; inputs, targets, token ids and the extra features must be identical.

The original tasks read TFDS; we hand them the rows our local sources yield, which are in the
TFDS builders' feature layout (``local_sources.py``). Hand-made edge-case rows (marked as such)
cover what the shipped rows do not: HTML markup, punctuation, queries without answers, possessive
pronouns, trailing whitespace, non-ASCII text.
"""
import json

import pytest

from t5mtf.data import registry
from t5mtf.data.tasks import formats
from tests.peers import t5_env

pytestmark = pytest.mark.slow

# (our task, split) -> the original's task. Every GLUE/SuperGLUE task we ship rows for, SQuAD,
# CNN/DM and the three translation directions.
PAIRS = {
    **{(f"glue_{n}_local", s): f"glue_{n}_v002" for n in ("cola", "sst2", "mrpc", "stsb", "rte",
                                                          "wnli")
       for s in ("train", "validation")},
    **{(f"super_glue_{n}_local", s): f"super_glue_{n}_v102"
       for n in ("boolq", "cb", "copa", "multirc", "record", "rte", "wic")
       for s in ("train", "validation")},
    ("super_glue_wsc_local", "train"): "super_glue_wsc_v102_simple_train",
    ("super_glue_wsc_local", "validation"): "super_glue_wsc_v102_simple_eval",
    ("squad_v010_local", "train"): "squad_v010_allanswers",
    ("squad_v010_local", "validation"): "squad_v010_allanswers",
    ("cnn_dailymail_local", "train"): "cnn_dailymail_v002",
    ("cnn_dailymail_local", "validation"): "cnn_dailymail_v002",
    ("translate_en_de_local", "validation"): "wmt_t2t_ende_v003",
    ("translate_en_de_wmt14_local", "train"): "wmt_t2t_ende_v003",
    ("translate_en_fr_local", "validation"): "wmt14_enfr_v003",
    ("translate_en_ro_local", "validation"): "wmt16_enro_v003",
    ("translate_en_ro_wmt16_local", "train"): "wmt16_enro_v003",
}

# Hand-made rows (not real data) for what the shipped rows do not cover. (our TFDS task, the
# original's task, rows in the TFDS layout).
EDGE_CASES = [
    ("super_glue_multirc_v102", "super_glue_multirc_v102", [
        {"paragraph": "<b>Sent 1: </b>It rained.<br><b>Sent 2: </b>We stayed in.<br>",
         "question": "Why <b>did</b> we stay in?", "answer": "It rained ", "label": 1,
         "idx": {"paragraph": 3, "question": 7, "answer": 1}}]),
    ("squad_v010", "squad_v010_allanswers", [
        {"id": "x1", "title": "t", "question": "Who's (really) there?",
         "context": "Denver's \"Broncos\"  won 24–10, in 2016!", "answers": {
             "text": ["Denver's \"Broncos\"", "Broncos"], "answer_start": [0, 10]}}]),
    ("super_glue_record_v102", "super_glue_record_v102", [
        {"passage": "A man spoke.\n@highlight\nHe said \"no\"\n@highlight\nThe end!\n@highlight"
                    "\nIt's over", "query": "@placeholder spoke.", "entities": ["man", "end"],
         "answers": [], "idx": {"passage": 1, "query": 2}},
        {"passage": "Paris?\n@highlight\nYes'\n@highlight\nno", "query": "@placeholder is big",
         "entities": ["Paris"], "answers": ["Paris", "Paris"], "idx": {"passage": 4, "query": 5}}]),
    ("dpr_v001_simple", "dpr_v001_simple", [
        {"sentence": "He's sure that the dog bit him because he was angry.", "pronoun": "he",
         "candidates": ["the dog", "the man"], "label": 0},
        {"sentence": "The cat chased the mouse, but it escaped.", "pronoun": "it",
         "candidates": ["the cat", "the mouse"], "label": 1},
        {"sentence": "Anna told Maria that she won.", "pronoun": "she",
         "candidates": ["Anna", "Maria"], "label": 1}]),
    ("glue_sst2_v002", "glue_sst2_v002", [
        {"sentence": "  spaced   out\t", "label": 0, "idx": 0},
        {"sentence": "naïve café — 東京 ", "label": -1, "idx": 1}]),
    ("glue_stsb_v002", "glue_stsb_v002", [
        {"sentence1": "a", "sentence2": "b", "label": 2.5, "idx": 0},
        {"sentence1": "a", "sentence2": "b", "label": 4.9, "idx": 1},
        {"sentence1": "a", "sentence2": "b", "label": 0.1, "idx": 2}]),
    ("super_glue_wsc_v102", "super_glue_wsc_v102_simple_eval", [
        {"text": "The boy continued to whip the pony , and eventually the pony threw him over. "
                 "John laughed out quite loud. \"Good for him,\" he said. ",
         "span1_text": "John", "span1_index": 15, "span2_text": "him", "span2_index": 19,
         "label": 0, "idx": 0}]),
]


def source_rows(task, split):
  source = task.source
  if hasattr(source, "_rows"):  # RowRangeSource
    return source._rows(split)
  return source.rows(split)


plain = t5_env.plain


def ours_on_rows(task, rows, split, sequence_length=None):
  """Our task's text preprocessors and tokenizer on the given rows (no shuffle), trimmed to
  ``sequence_length`` if given."""
  import tensorflow as tf
  from t5mtf.data.tasks import local_sources
  source = local_sources.TypedRowsSource({split: None}, _spec_of(rows))
  source._load = lambda s: rows
  original_source, task.source = task.source, source
  try:
    return [{k: plain(v) for k, v in ex.items()}
            for ex in task.get_dataset(sequence_length, split, shuffle=False).as_numpy_iterator()]
  finally:
    task.source = original_source


def _spec_of(rows):
  import tensorflow as tf

  def spec(value, key=""):
    if isinstance(value, dict):
      return {k: spec(v, k) for k, v in value.items()}
    if isinstance(value, list):
      return tf.TensorSpec([None], tf.int32 if value and isinstance(value[0], int) else tf.string)
    if isinstance(value, float):
      return tf.TensorSpec([], tf.float32)
    if isinstance(value, int):
      return tf.TensorSpec([], tf.int32 if key in {"idx", "paragraph", "question", "answer",
                                                   "passage", "query", "span2_index",
                                                   "span1_index"} else tf.int64)
    return tf.TensorSpec([], tf.string)
  return spec(rows[0])


def compare(ours, theirs):
  """-> list of differences (empty: identical). Our token ids end in EOS; the original adds
  it after its cache step."""
  if isinstance(theirs, dict) and "error" in theirs:
    return [f"the original fails on this row: {theirs['error']}"]
  diffs = []
  if len(ours) != len(theirs):
    return [f"{len(ours)} examples, the original {len(theirs)}"]
  for i, (a, b) in enumerate(zip(ours, theirs)):
    if sorted(a) != sorted(b):
      diffs.append(f"example {i}: features {sorted(a)} vs {sorted(b)}")
      continue
    for k in b:
      x = a[k]
      if k in ("inputs", "targets"):
        if x[-1:] != [1] or x[:-1] != b[k]:
          diffs.append(f"example {i} [{k}] ids differ")
      elif x != b[k]:
        diffs.append(f"example {i} [{k}]: ours {x!r}\n  original {b[k]!r}")
  return diffs


# The first real rows of every GLUE and SuperGLUE config in their official files
# (data/tasks/fixtures), read by the TFDS builders' code, including unlabelled test rows:
# (our task, the original's task, TFDS module, config, file, split).
_G, _SG = "data/tasks/fixtures/glue", "data/tasks/fixtures/super_glue"
FIXTURES = [
    *[(f"glue_{n}_v002", f"glue_{n}_v002", "glue", n, f"{_G}/{n}/{d}/{f}", s)
      for n, d in (("cola", "CoLA"), ("sst2", "SST-2"), ("qqp", "QQP"), ("qnli", "QNLI"),
                   ("rte", "RTE"), ("wnli", "WNLI"), ("stsb", "SST-B"))
      for f, s in (("train.tsv", "train"), ("dev.tsv", "validation"), ("test.tsv", "test"))],
    *[(f"glue_mnli{t}_v002", f"glue_mnli{t}_v002", "glue", "mnli", f"{_G}/mnli/MNLI/{f}", s)
      for t, f, s in (("", "train.tsv", "train"), ("_matched", "dev_matched.tsv", "validation"),
                      ("_mismatched", "dev_mismatched.tsv", "validation"),
                      ("_matched", "test_matched.tsv", "test"))],
    *[(f"super_glue_{n}_v102", f"super_glue_{n}_v102", "super_glue", n, f"{_SG}/{d}/{f}", s)
      for n, d in (("boolq", "BoolQ"), ("cb", "CB"), ("copa", "COPA"), ("multirc", "MultiRC"),
                   ("record", "ReCoRD"), ("rte", "RTE"), ("wic", "WiC"))
      for f, s in (("train.jsonl", "train"), ("val.jsonl", "validation"),
                   ("test.jsonl", "test"))],
    *[("super_glue_wsc_v102", f"super_glue_wsc_v102_simple_{'train' if s == 'train' else 'eval'}",
       "super_glue", "wsc.fixed", f"{_SG}/WSC/{f}", s)
      for f, s in (("train.jsonl", "train"), ("val.jsonl", "validation"), ("test.jsonl", "test"))],
]


def fixture_rows(module, config, path, split):
  from t5mtf.data.tasks import local_sources
  return local_sources.TfdsFileSource(module, config, {split: path}).rows(split)


# Tasks that filter (WSC training) or expand (ReCoRD) rows are compared row by row; the others
# one output per row, in order.
def per_row(name):
  return name.startswith(("super_glue_wsc_", "super_glue_record_"))


def ours_per_row(task, rows, split):
  """Our outputs as a list per row: row by row where the task filters or expands, else one
  pipeline (a pipeline per row took 12 s for MultiRC's 60 fixture rows) and one output a row."""
  if per_row(task.name):  # A filtered or expanded row is matched to its own outputs.
    return [ours_on_rows(task, [row], split) for row in rows]
  ours = [[ex] for ex in ours_on_rows(task, rows, split)]
  assert len(ours) == len(rows)
  return ours


# Long rows trimmed to a sequence length (Task.get_dataset's trim, EOS kept as the last id): the
# paper's 512 / 114 and a short 64 / 16 that cuts most rows.
TRIMMED = [("cnn_dailymail_local", "validation"), ("squad_v010_local", "train"),
           ("translate_en_de_local", "validation"), ("super_glue_multirc_local", "validation"),
           ("super_glue_boolq_local", "validation"), ("glue_rte_local", "validation")]
LENGTHS = [{"inputs": 512, "targets": 114}, {"inputs": 64, "targets": 16}]


@pytest.fixture(scope="module")
def oracle():
  jobs, keys = [], []
  for (name, split), original in PAIRS.items():
    rows = source_rows(registry.get_task(name), split)
    jobs.append({"op": "preprocess", "task": original, "rows": rows,
                 "per_row": per_row(name)})
    keys.append(("shipped", name, split))
  for ours, original, module, config, path, split in FIXTURES:
    jobs.append({"op": "preprocess", "task": original, "per_row": True,
                 "rows": fixture_rows(module, config, path, split)})
    keys.append(("fixture", ours, path))
  for ours, original, rows in EDGE_CASES:
    jobs.append({"op": "preprocess", "task": original, "rows": rows, "per_row": True})
    keys.append(("edge", ours, "validation"))
  for (name, split), length in ((pair, length) for pair in TRIMMED for length in LENGTHS):
    jobs.append({"op": "preprocess", "task": PAIRS[name, split], "sequence_length": length,
                 "rows": source_rows(registry.get_task(name), split)})
    keys.append(("trimmed", name, split, length["inputs"]))
  return dict(zip(keys, t5_env.ask(jobs)))


def _check(oracle, key, ours_per_row):
  theirs = t5_env.ok(oracle[key])
  assert len(theirs) == len(ours_per_row), \
      f"{key}: {len(ours_per_row)} rows, the original answered {len(theirs)}"
  same = diff = 0
  problems = []
  for i, (a, b) in enumerate(zip(ours_per_row, theirs)):
    d = compare(a, b)
    if d:
      diff += 1
      problems.append(f"row {i}: " + "; ".join(d[:3]))
    else:
      same += 1
  print(f"{key[1]} {key[2]}: {same} identical, {diff} different")
  assert not problems, f"{key}: {diff} of {same + diff} rows differ:\n" + "\n".join(problems[:5])


@pytest.mark.parametrize("name,split", sorted(PAIRS))
def test_shipped_rows_format_as_released(oracle, name, split):
  task = registry.get_task(name)
  rows = source_rows(task, split)
  ours = ours_per_row(task, rows, split)
  _check(oracle, ("shipped", name, split), ours)


@pytest.mark.parametrize("case", range(len(EDGE_CASES)), ids=[c[0] for c in EDGE_CASES])
def test_edge_cases_format_as_released(oracle, case):
  name, _, rows = EDGE_CASES[case]
  task = registry.get_task(name)
  ours = [ours_on_rows(task, [row], "validation") for row in rows]
  _check(oracle, ("edge", name, "validation"), ours)


@pytest.mark.parametrize("case", range(len(FIXTURES)), ids=[f[4][27:] for f in FIXTURES])
def test_fixture_rows_format_as_released(oracle, case):
  name, _, module, config, path, split = FIXTURES[case]
  rows = fixture_rows(module, config, path, split)
  ours = ours_per_row(registry.get_task(name), rows, split)
  _check(oracle, ("fixture", name, path), ours)


def test_wnli_winograd_on_every_shipped_row():
  """WNLI in the Winograd format (released for evaluation): the original's function on all
  635 shipped rows, including the training rows it was not checked on; where it gives up we
  give up too."""
  rows = [r for s in ("train", "validation")
          for r in source_rows(registry.get_task("glue_wnli_local"), s)]
  theirs = t5_env.ok(t5_env.ask([{"op": "preprocess", "task": "glue_wnli_v002_simple_eval",
                                  "rows": rows}])[0])
  assert len(theirs) == len(rows)
  same, problems = 0, []
  for row, t in zip(rows, theirs):
    try:
      mine = list(formats.wnli_to_winograd(row["sentence1"], row["sentence2"]))
    except ValueError as e:
      mine = f"error {e}"
    expected = (f"error" if isinstance(t, dict) else
                [t[0]["inputs_pretokenized"], t[0]["targets_pretokenized"]])
    if mine == expected or (isinstance(mine, str) and expected == "error"):
      same += 1
    else:
      problems.append(f"{row['idx']}: ours {mine!r} original {json.dumps(expected)}")
  print(f"WNLI Winograd: {same} identical, {len(problems)} different")
  assert not problems, "\n".join(problems[:5])


@pytest.mark.parametrize("length", LENGTHS, ids=lambda n: f"{n['inputs']}-{n['targets']}")
@pytest.mark.parametrize("name,split", TRIMMED)
def test_trimmed_rows_are_the_released(oracle, name, split, length):
  """Every feature trimmed to its length with EOS as the last id, as the released Task trims
  (append_eos_after_trim, then its output trim); the untrimmed features unchanged."""
  task = registry.get_task(name)
  ours = ours_on_rows(task, source_rows(task, split), split, length)
  theirs = [out[0] for out in t5_env.ok(oracle["trimmed", name, split, length["inputs"]])]
  assert len(ours) == len(theirs)
  cut = sum(len(t["inputs"]) == length["inputs"] or len(t["targets"]) == length["targets"]
            for t in theirs)
  different = [i for i, (a, b) in enumerate(zip(ours, theirs))
               if sorted(a) != sorted(b) or any(a[k] != b[k] for k in b)]
  print(f"{name} {split} {length}: {len(ours)} rows, {cut} trimmed, {len(different)} differ")
  assert not different, (different[:5], ours[different[0]], theirs[different[0]])
