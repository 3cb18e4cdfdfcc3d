"""Postprocessors and metrics against the released code itself (t5==0.9.4 in its own venv):
the same examples (real shipped rows) and the same decoded strings go through our task's
postprocessor and metrics and through the original task's; every value must agree to 1e-9.

Predictions are the targets themselves plus odd ones made for this test: other labels, extra
spaces, wrong case, invalid strings, empty strings, "nan"/"inf" and unparsable numbers for STS-B,
determiners and possessives for WSC, punctuation-only answers for SQuAD/ReCoRD.
"""
import math
import random

import numpy as np
import pytest

from t5mtf.data import registry
from t5mtf.evaluation import evaluate
from tests.peers import t5_env

pytestmark = pytest.mark.slow

# our task -> the original's task (postprocess_fn and metric_fns).
TASKS = {
    "glue_cola_local": "glue_cola_v002", "glue_sst2_local": "glue_sst2_v002",
    "glue_mrpc_local": "glue_mrpc_v002", "glue_stsb_local": "glue_stsb_v002",
    "glue_rte_local": "glue_rte_v002", "glue_wnli_local": "glue_wnli_v002",
    "glue_wnli_winograd_local": "glue_wnli_v002_simple_eval",
    "super_glue_boolq_local": "super_glue_boolq_v102", "super_glue_cb_local": "super_glue_cb_v102",
    "super_glue_copa_local": "super_glue_copa_v102", "super_glue_rte_local": "super_glue_rte_v102",
    "super_glue_wic_local": "super_glue_wic_v102",
    "super_glue_multirc_local": "super_glue_multirc_v102",
    "super_glue_record_local": "super_glue_record_v102",
    "super_glue_wsc_local": "super_glue_wsc_v102_simple_eval",
    "squad_v010_local": "squad_v010_allanswers", "cnn_dailymail_local": "cnn_dailymail_v002",
    "translate_en_de_local": "wmt_t2t_ende_v003", "translate_en_ro_local": "wmt16_enro_v003",
}
ODD = ["", " ", "True ", " positive", "Positive", "entailment.", "nan", "inf", "-inf", "2.6 ",
       "five", "1e3", "the", "his", "The ", "!!", "a b", "<unk>"]
MAX_EXAMPLES = 400  # Per task: enough for every branch, small enough for the oracle's time.


plain = t5_env.plain


def examples_and_predictions(name):
  task = registry.get_task(name)
  examples = list(task.get_dataset(None, "validation", shuffle=False).take(MAX_EXAMPLES)
                  .as_numpy_iterator())
  rng = random.Random(name)
  targets = [plain(e["targets_pretokenized"]) for e in examples]
  predictions = []
  for i, t in enumerate(targets):
    kind = rng.random()
    if kind < 0.4:
      predictions.append(t)
    elif kind < 0.7:
      predictions.append(rng.choice(targets))
    elif kind < 0.85:
      predictions.append(rng.choice(ODD))
    else:  # The target, damaged: case, spaces, a word dropped or a possessive added.
      words = t.split(" ")
      predictions.append(rng.choice([t.upper(), f" {t}", f"{t}'s", " ".join(words[1:]),
                                     "the " + t.lower()]))
  return examples, predictions


def for_json(example):
  return {k: plain(v) for k, v in example.items() if k not in ("inputs", "targets")}


def same(a, b):
  if isinstance(b, str) and b in ("nan", "inf", "-inf"):
    b = float(b)
  if isinstance(a, float) and math.isnan(a):
    return isinstance(b, float) and math.isnan(b)
  return a == pytest.approx(b, abs=1e-9)


@pytest.fixture(scope="module")
def cases():
  data = {n: examples_and_predictions(n) for n in TASKS}
  jobs = [{"op": "metrics", "task": TASKS[n], "examples": [for_json(e) for e in ex],
           "targets": [plain(e["targets_pretokenized"]) for e in ex], "predictions": p,
           "numpy_seed": 0}
          for n, (ex, p) in data.items()]
  return data, dict(zip(TASKS, t5_env.ask(jobs)))


@pytest.mark.parametrize("name", sorted(TASKS))
def test_metrics_as_released(cases, name):
  data, answers = cases
  examples, predictions = data[name]
  theirs = t5_env.ok(answers[name])
  np.random.seed(0)  # ROUGE's bootstrap (mid of 1,000 resamples) draws from numpy, as there.
  ours = evaluate.score_task(registry.get_task(name), examples, predictions)
  print(f"{name}: {len(examples)} examples, ours {ours}, original {theirs}")
  assert sorted(ours) == sorted(theirs)
  for k in theirs:
    assert same(ours[k], theirs[k]), f"{name} {k}: ours {ours[k]} original {theirs[k]}"


def test_stsb_odd_predictions_as_released():
  """Every odd string alone against real targets, so that each one's effect is seen."""
  task = registry.get_task("glue_stsb_local")
  examples = list(task.get_dataset(None, "validation", shuffle=False).take(20)
                  .as_numpy_iterator())
  targets = [plain(e["targets_pretokenized"]) for e in examples]
  jobs, ours = [], []
  for odd in ODD:
    predictions = targets[:-1] + [odd]
    jobs.append({"op": "metrics", "task": "glue_stsb_v002", "targets": targets,
                 "predictions": predictions})
    ours.append(evaluate.score_task(task, examples, predictions))
  for odd, mine, answer in zip(ODD, ours, t5_env.ask(jobs)):
    theirs = t5_env.ok(answer)
    for k in theirs:
      assert same(mine[k], theirs[k]), f"{odd!r} {k}: ours {mine[k]} original {theirs[k]}"


def test_glue_average_groups_as_released():
  """The released eval_utils averages metric groups (MNLI m/mm one group, MRPC F1+acc one)."""
  results = {"glue_cola_v002": {"matthews_corrcoef": 50.0}, "glue_sst2_v002": {"accuracy": 90.0},
             "glue_mrpc_v002": {"f1": 80.0, "accuracy": 70.0},
             "glue_stsb_v002": {"pearson_corrcoef": 60.0, "spearman_corrcoef": 62.0},
             "glue_qqp_v002": {"f1": 70.0, "accuracy": 75.0},
             "glue_mnli_matched_v002": {"accuracy": 80.0},
             "glue_mnli_mismatched_v002": {"accuracy": 82.0},
             "glue_qnli_v002": {"accuracy": 88.0}, "glue_rte_v002": {"accuracy": 66.0}}
  row = {f"{task}/{m}": v for task, ms in results.items() for m, v in ms.items()}
  theirs = t5_env.ok(t5_env.ask([{"op": "glue_average", "scores": row}])[0])
  assert evaluate.averages(results)["glue_average"] == pytest.approx(theirs)


# The official-format fixtures (a few real rows each) of the tasks we ship no sample of.
FIXTURE_TASKS = {
    "glue_mnli_matched_v002": ("glue", "mnli", "data/tasks/fixtures/glue/mnli/MNLI/dev_matched.tsv"),
    "glue_mnli_mismatched_v002": ("glue", "mnli",
                                  "data/tasks/fixtures/glue/mnli/MNLI/dev_mismatched.tsv"),
    "glue_qqp_v002": ("glue", "qqp", "data/tasks/fixtures/glue/qqp/QQP/train.tsv"),
    "glue_qnli_v002": ("glue", "qnli", "data/tasks/fixtures/glue/qnli/QNLI/train.tsv"),
}


def fixture_cases():
  """(task, examples, [prediction lists]): the real targets, labels of other classes, and
  invalid strings (a leading space, empty)."""
  from tests.test_oracle_formats import fixture_rows, ours_on_rows
  out = []
  for name, (module, config, path) in sorted(FIXTURE_TASKS.items()):
    task = registry.get_task(name)
    examples = ours_on_rows(task, fixture_rows(module, config, path, "validation"),
                            "validation")
    targets = [plain(e["targets_pretokenized"]) for e in examples]
    others = ["neutral", "not_entailment", "duplicate", " entailment", ""]
    out.append((name, examples, [targets, others[:len(targets)], [""] * len(targets)]))
  return out


def test_metrics_of_fixture_tasks_as_released():
  cases = fixture_cases()
  jobs = [{"op": "metrics", "task": name, "predictions": p,
           "targets": [plain(e["targets_pretokenized"]) for e in examples]}
          for name, examples, predictions in cases for p in predictions]
  answers = iter(t5_env.ask(jobs))
  for name, examples, predictions in cases:
    as_bytes = [{k: (v.encode() if isinstance(v, str) else v) for k, v in e.items()}
                for e in examples]
    for p in predictions:
      ours = evaluate.score_task(registry.get_task(name), as_bytes, p)
      theirs = t5_env.ok(next(answers))
      for k in theirs:
        assert same(ours[k], theirs[k]), f"{name} {p} {k}: ours {ours[k]} original {theirs[k]}"
