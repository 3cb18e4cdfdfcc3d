"""Metrics against the reference libraries called directly, plus hand-checked cases; the
released code itself judges them in test_oracle_metrics.py."""
import math

import numpy as np
import pytest
import sacrebleu
import scipy.stats
import sklearn.metrics
from rouge_score import rouge_scorer

from t5mtf.data import registry
from t5mtf.evaluation import evaluate, metrics, postprocessors as post


def test_classification_against_sklearn():
  t = [0, 1, 1, 0, 1, 0, 1, 1]
  p = [0, 1, 0, 0, 1, 1, -1, 1]
  assert metrics.accuracy(t, p)["accuracy"] == pytest.approx(100 * 5 / 8)
  # The invalid prediction (-1, target 1) counts as the wrong class, 0.
  assert metrics.f1_score_with_invalid(t, p)["f1"] == pytest.approx(100 * sklearn.metrics.f1_score(
      t, [0, 1, 0, 0, 1, 1, 0, 1]))
  assert metrics.f1_score_with_invalid([0, 0, 1], [-1, 0, 1])["f1"] == pytest.approx(100 * 2 / 3)
  assert metrics.matthews_corrcoef(t, p)["matthews_corrcoef"] == pytest.approx(
      100 * sklearn.metrics.matthews_corrcoef(t, p))


def test_cb_macro_f1_counts_invalid_as_wrong():
  t, p = [0, 1, 2, 0], [0, 1, -1, 0]
  got = metrics.mean_multiclass_f1(3)(t, p)["mean_3class_f1"]
  assert got == pytest.approx(100 * (1 + 1 + 0) / 3)


def test_correlations_against_scipy_and_nan_is_nan():
  t = [0.0, 1.2, 2.6, 3.8, 5.0]
  p = [0.2, 1.0, 3.0, 3.6, 4.8]
  assert metrics.pearson_corrcoef(t, p)["pearson_corrcoef"] == pytest.approx(
      100 * scipy.stats.pearsonr(t, p)[0])
  assert metrics.spearman_corrcoef(t, p)["spearman_corrcoef"] == pytest.approx(
      100 * scipy.stats.spearmanr(t, p)[0])
  # As released: a NaN prediction makes the correlation NaN (unparsable text is -1 already).
  assert math.isnan(metrics.pearson_corrcoef(t, p[:-1] + [math.nan])["pearson_corrcoef"])


def test_bleu_against_sacrebleu():
  refs = ["Das ist gut.", "Ich habe einen Hund."]
  hyps = ["Das ist gut.", "Ich habe eine Katze."]
  expected = sacrebleu.corpus_bleu(hyps, [refs], smooth_method="exp", tokenize="intl").score
  assert metrics.bleu(refs, hyps)["bleu"] == pytest.approx(expected)
  assert metrics.bleu(refs, refs)["bleu"] == pytest.approx(100.0)


def test_rouge_against_rouge_score():
  t = ["the cat sat on the mat.", "police arrested two men on friday."]
  p = ["a cat sat on a mat.", "two men were arrested."]
  scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2"])  # No stemming, as released.
  r1 = np.mean([scorer.score(a, b)["rouge1"].fmeasure for a, b in zip(t, p)])
  assert metrics.rouge(t, p)["rouge1"] == pytest.approx(100 * r1, rel=1e-6)


def test_squad_normalisation_and_max_over_answers():
  assert metrics.normalize_squad("The  Eiffel, Tower!") == "eiffel tower"
  got = metrics.squad([["Eiffel Tower", "the tower"], ["Paris"]], ["the Eiffel tower", "in Paris"])
  assert got["em"] == pytest.approx(50.0)
  assert got["f1"] == pytest.approx(100 * (1 + 2 * 0.5 * 1 / 1.5) / 2)
  assert metrics.squad([["x"]], [""])["f1"] == 0.0
  assert metrics.squad([["the"]], ["a"])["f1"] == 0.0  # Both empty after normalising.


def test_multirc_f1a_and_per_question_exact_match():
  t = [1, 0, 1, 1, 0]
  p = [1, 0, 0, 1, 0]
  groups = [1, 1, 1, 2, 2]
  got = metrics.multirc([{"value": v, "group": g} for v, g in zip(t, groups)],
                        [{"value": v} for v in p])
  assert got["exact_match"] == pytest.approx(50.0)
  assert got["f1"] == pytest.approx(100 * sklearn.metrics.f1_score(t, p))


def test_wsc_rules():
  ex = {"targets_pretokenized": b"The city councilmen", "label": 1}
  assert post.wsc_simple("councilmen", example=ex) == 1
  assert post.wsc_simple("the demonstrators", example=ex) == 0
  assert post.wsc_simple("", example=ex) == -1
  assert post.wsc_simple("the", example=ex) == -1  # Only a determiner: empty.
  assert post.wsc_simple("councilmen's", example=ex) == 0  # Apostrophe on one side only.
  assert post.wsc_simple("x", example=ex, is_target=True) == 1


def test_postprocessors():
  assert post.string_label_to_class_id("positive", ["negative", "positive"]) == 1
  assert post.string_label_to_class_id("posit", ["negative", "positive"]) == -1
  assert post.string_label_to_class_id(" positive", ["negative", "positive"]) == -1
  assert post.string_to_float("2.6") == 2.6 and post.string_to_float("two") == -1.0
  assert math.isnan(post.string_to_float("nan"))


def test_evaluate_rows_and_glue_average_without_wnli():
  rows = [{"task": "glue_sst2_local", "prediction": "positive", "target": "positive"},
          {"task": "glue_sst2_local", "prediction": "garbage", "target": "negative"},
          {"task": "glue_cola_local", "prediction": "acceptable", "target": "acceptable"},
          {"task": "glue_cola_local", "prediction": "unacceptable", "target": "unacceptable"},
          {"task": "glue_wnli_local", "prediction": "entailment", "target": "not_entailment"}]
  out = evaluate.evaluate(rows)
  assert out["glue_sst2_local"]["accuracy"] == 50.0
  assert out["glue_cola_local"]["matthews_corrcoef"] == 100.0
  assert out["averages"]["glue_average"] == pytest.approx(75.0)
  assert out["averages"]["glue_average_tasks"] == 2


def test_task_score_averages_within_the_task_first():
  rows = [{"task": "glue_mrpc_local", "prediction": "equivalent", "target": "equivalent"},
          {"task": "glue_mrpc_local", "prediction": "equivalent", "target": "not_equivalent"},
          {"task": "glue_sst2_local", "prediction": "positive", "target": "positive"}]
  out = evaluate.evaluate(rows)
  mrpc = (out["glue_mrpc_local"]["f1"] + out["glue_mrpc_local"]["accuracy"]) / 2
  assert out["averages"]["glue_average"] == pytest.approx((mrpc + 100.0) / 2)


def test_evaluate_cli(tmp_path):
  import json
  import subprocess
  import sys
  f = tmp_path / "rows.jsonl"
  f.write_text(json.dumps({"task": "squad_v010_local", "prediction": "France",
                           "target": "France", "answers": ["France", "france"]}) + "\n")
  out = subprocess.run([sys.executable, "-m", "t5mtf.evaluation", f"--input={f}"],
                       capture_output=True, text=True, check=True)
  assert json.loads(out.stdout)["squad_v010_local"]["em"] == 100.0


def test_unknown_task_in_rows():
  with pytest.raises(ValueError, match="did you mean"):
    evaluate.evaluate([{"task": "glue_sst_local", "prediction": "a", "target": "b"}])
