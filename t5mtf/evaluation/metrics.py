"""Metrics as the released code computes them (t5.evaluation.metrics; ``tests/
test_oracle_metrics.py`` checks each against it): ``fn(targets, predictions) -> dict``, scores
in percent (§2.3, §3.1.5), on postprocessed values (``postprocessors.py``). Reference libraries do
the work: scikit-learn, scipy, sacrebleu (exp smoothing, intl tokenisation) and rouge-score.
"""
import collections
import math
import re
import string

import numpy as np
import sacrebleu
import scipy.stats
import sklearn.metrics
from rouge_score import rouge_scorer, scoring


def accuracy(targets, predictions):
  return {"accuracy": 100 * sklearn.metrics.accuracy_score(targets, predictions)}


def f1_score_with_invalid(targets, predictions):
  """F1 of class 1, a prediction other than 0 or 1 counted as the wrong class."""
  t, p = np.asarray(targets), np.array(predictions)
  invalid = (p != 0) & (p != 1)
  p[invalid] = 1 - t[invalid]
  return {"f1": 100 * sklearn.metrics.f1_score(t, p)}


def f1_and_accuracy(targets, predictions):
  return {**f1_score_with_invalid(targets, predictions), **accuracy(targets, predictions)}


def mean_multiclass_f1(num_classes):
  """Macro F1 over the classes 0..n-1 (CB, §2.3): invalid predictions (-1) are wrong for
  every class."""
  def fn(targets, predictions):
    return {f"mean_{num_classes}class_f1": 100 * sklearn.metrics.fbeta_score(
        targets, predictions, beta=1, labels=range(num_classes), average="macro")}
  return fn


def matthews_corrcoef(targets, predictions):
  return {"matthews_corrcoef": 100 * sklearn.metrics.matthews_corrcoef(targets, predictions)}


def pearson_corrcoef(targets, predictions):
  """STS-B; a prediction of NaN or inf makes the correlation NaN, as in the released code's
  environment (our pinned scipy would raise instead)."""
  if not (np.all(np.isfinite(targets)) and np.all(np.isfinite(predictions))):
    return {"pearson_corrcoef": math.nan}
  return {"pearson_corrcoef": 100 * scipy.stats.pearsonr(targets, predictions)[0]}


def spearman_corrcoef(targets, predictions):
  """Ranks: inf ranks last; NaN makes it NaN."""
  if np.any(np.isnan(targets)) or np.any(np.isnan(predictions)):
    return {"spearman_corrcoef": math.nan}
  return {"spearman_corrcoef": 100 * scipy.stats.spearmanr(targets, predictions)[0]}


def bleu(targets, predictions):
  """Corpus BLEU as §3.1.5 computes it: sacrebleu, exponential smoothing, intl tokenisation.
  ``targets`` may hold one reference per example or a list of references each."""
  references = [list(t) for t in targets] if isinstance(targets[0], list) else [targets]
  score = sacrebleu.corpus_bleu(predictions, references, smooth_method="exp", smooth_value=0.0,
                                force=False, lowercase=False, tokenize="intl",
                                use_effective_order=False)
  return {"bleu": score.score}


def rouge(targets, predictions, score_keys=("rouge1", "rouge2", "rougeLsum")):
  """ROUGE F-measures as released: rouge-score without stemming, bootstrap-aggregated;
  rougeLsum's sentences are split only where " . " stands."""
  scorer = rouge_scorer.RougeScorer(rouge_types=list(score_keys))
  aggregator = scoring.BootstrapAggregator()
  for prediction, target in zip(predictions, targets):
    aggregator.add_scores(scorer.score(target=target.replace(" . ", " .\n"),
                                       prediction=prediction.replace(" . ", " .\n")))
  result = aggregator.aggregate()
  return {k: 100 * result[k].mid.fmeasure for k in score_keys}


# -- SQuAD-style answers -------------------------------------------------------------------------


def normalize_squad(text):
  """SQuAD's official normalisation: lower case, no punctuation, no articles, single spaces."""
  text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
  text = re.sub(r"\b(a|an|the)\b", " ", text)
  return " ".join(text.split())


def _token_f1(target, prediction):
  """Token-overlap F1; 0 when nothing overlaps, even when both are empty (as released)."""
  t, p = target.split(), prediction.split()
  same = sum((collections.Counter(p) & collections.Counter(t)).values())
  if same == 0:
    return 0.0
  precision, recall = same / len(p), same / len(t)
  return 2 * precision * recall / (precision + recall)


def squad(targets, predictions):
  """targets: lists of acceptable answers. Max over answers, mean over questions."""
  targets = [[normalize_squad(t) for t in ts] for ts in targets]
  predictions = [normalize_squad(p) for p in predictions]
  em = np.mean([max(float(t == p) for t in ts) for ts, p in zip(targets, predictions)])
  f1 = np.mean([max(_token_f1(t, p) for t in ts) for ts, p in zip(targets, predictions)])
  return {"em": 100 * float(em), "f1": 100 * float(f1)}


def record(targets, predictions):
  """ReCoRD: one example per answer was decoded; each (passage, query) group counts once, its
  first prediction against all its answers (SQuAD metrics)."""
  seen, t_out, p_out = set(), [], []
  for t, p in zip(targets, predictions):
    if t["group"] not in seen:
      seen.add(t["group"])
      t_out.append(t["value"])
      p_out.append(p["value"])
  return squad(t_out, p_out)


def multirc(targets, predictions):
  """MultiRC (§2.3): F1 over every answer option (the paper's F1a) and exact match per question group."""
  out = {"f1": f1_score_with_invalid([t["value"] for t in targets],
                                      [p["value"] for p in predictions])["f1"]}
  groups = collections.defaultdict(lambda: ([], []))
  for t, p in zip(targets, predictions):
    groups[t["group"]][0].append(t["value"])
    groups[t["group"]][1].append(p["value"])
  out["exact_match"] = float(np.mean([100 * float(np.array_equal(t, p))
                                      for t, p in groups.values()]))
  return out


def mean_of(values):
  values = [v for v in values if v is not None and not math.isnan(v)]
  return float(np.mean(values)) if values else math.nan
