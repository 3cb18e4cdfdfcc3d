"""Metrics named as users of the original know them: ``fn(targets, predictions) -> dict``,
scores in percent (§2.3, §3.1.5). Reference libraries do the work: scikit-learn, scipy,
sacrebleu (exp smoothing, intl tokenisation) and rouge-score.
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
  return {"accuracy": 100 * float(np.mean(np.asarray(targets) == np.asarray(predictions)))}


def _invalid_as_wrong(targets, predictions):
  """Binary tasks: an invalid prediction (-1) becomes the opposite of the target (§2.4)."""
  t = np.asarray(targets)
  p = np.asarray(predictions)
  return t, np.where((p == 0) | (p == 1), p, 1 - t)


def f1_binary(targets, predictions):
  """F1 of the positive class (1); invalid predictions count as wrong."""
  t, p = _invalid_as_wrong(targets, predictions)
  return {"f1": 100 * sklearn.metrics.f1_score(t, p, pos_label=1, zero_division=0)}


def f1_and_accuracy(targets, predictions):
  return {**f1_binary(targets, predictions), **accuracy(targets, predictions)}


def mean_multiclass_f1(num_classes):
  """Macro F1 over the classes (CB, §2.3); invalid predictions are wrong for every class."""
  def fn(targets, predictions):
    return {f"mean_{num_classes}class_f1": 100 * sklearn.metrics.f1_score(
        targets, predictions, labels=list(range(num_classes)), average="macro",
        zero_division=0)}
  return fn


def matthews_corrcoef(targets, predictions):
  return {"matthews_corrcoef": 100 * sklearn.metrics.matthews_corrcoef(targets, predictions)}


def _finite(targets, predictions):
  """Unparsable predictions (NaN) are wrong: they score as the farthest valid value."""
  t = np.asarray(targets, np.float64)
  p = np.asarray(predictions, np.float64)
  bad = ~np.isfinite(p)
  p[bad] = np.where(t[bad] > 2.5, 0.0, 5.0)
  return t, p


def pearson_corrcoef(targets, predictions):
  t, p = _finite(targets, predictions)
  return {"pearson_corrcoef": 100 * scipy.stats.pearsonr(t, p)[0]}


def spearman_corrcoef(targets, predictions):
  t, p = _finite(targets, predictions)
  return {"spearman_corrcoef": 100 * scipy.stats.spearmanr(t, p)[0]}


def bleu(targets, predictions):
  """Corpus BLEU as §3.1.5 computes it: sacrebleu, exponential smoothing, intl tokenisation."""
  score = sacrebleu.corpus_bleu(predictions, [targets], smooth_method="exp",
                                tokenize="intl", use_effective_order=False)
  return {"bleu": score.score}


def rouge(targets, predictions, score_keys=("rouge1", "rouge2", "rougeLsum")):
  """ROUGE F-measures (mean over examples, bootstrap-aggregated as rouge-score does)."""
  scorer = rouge_scorer.RougeScorer(list(score_keys), use_stemmer=True)
  aggregator = scoring.BootstrapAggregator()
  for t, p in zip(targets, predictions):
    # rougeLsum splits summaries on newlines: one sentence per line.
    aggregator.add_scores(scorer.score(_sentence_lines(t), _sentence_lines(p)))
  result = aggregator.aggregate()
  return {k: 100 * result[k].mid.fmeasure for k in score_keys}


def _sentence_lines(text):
  return re.sub(r"([.!?])\s+", r"\1\n", text.strip())


# -- SQuAD-style answers -------------------------------------------------------------------------


def normalize_squad(text):
  """SQuAD's official normalisation: lower case, no punctuation, no articles, single spaces."""
  text = text.lower()
  text = "".join(ch for ch in text if ch not in set(string.punctuation))
  text = re.sub(r"\b(a|an|the)\b", " ", text)
  return " ".join(text.split())


def _exact(target, prediction):
  return float(normalize_squad(target) == normalize_squad(prediction))


def _f1(target, prediction):
  t, p = normalize_squad(target).split(), normalize_squad(prediction).split()
  common = collections.Counter(t) & collections.Counter(p)
  same = sum(common.values())
  if not t or not p:
    return float(t == p)
  if same == 0:
    return 0.0
  precision, recall = same / len(p), same / len(t)
  return 2 * precision * recall / (precision + recall)


def squad(targets, predictions):
  """targets: list of lists of acceptable answers. Max over answers, mean over questions."""
  em = [max(_exact(t, p) for t in ts) for ts, p in zip(targets, predictions)]
  f1 = [max(_f1(t, p) for t in ts) for ts, p in zip(targets, predictions)]
  return {"em": 100 * float(np.mean(em)), "f1": 100 * float(np.mean(f1))}


def record(targets, predictions):
  """ReCoRD: max over the answers of each query (same normalisation as SQuAD)."""
  return squad(targets, predictions)


def multirc(targets, predictions, groups):
  """MultiRC: F1a over all answer options and exact match per question (§2.3)."""
  t, p = _invalid_as_wrong(targets, predictions)
  out = {"f1a": 100 * sklearn.metrics.f1_score(t, p, pos_label=1, zero_division=0)}
  by_question = collections.defaultdict(list)
  for t, p, g in zip(targets, predictions, groups):
    by_question[g].append(t == p)
  out["exact_match"] = 100 * float(np.mean([all(v) for v in by_question.values()]))
  return out


def wsc_word_subset(target, prediction):
  """§2.4: the prediction is right when its words are a subset of the referent's words (or the
  other way round), after lower-casing and dropping articles and punctuation."""
  def words(text):
    return set(normalize_squad(text).split())
  t, p = words(target), words(prediction)
  return bool(p) and (p <= t or t <= p)


def wsc_accuracy(targets, predictions, labels):
  """targets: referent candidates; labels: whether the candidate is the referent."""
  correct = [wsc_word_subset(t, p) == bool(l) for t, p, l in zip(targets, predictions, labels)]
  return {"accuracy": 100 * float(np.mean(correct))}


def mean_of(values):
  values = [v for v in values if v is not None and not math.isnan(v)]
  return float(np.mean(values)) if values else math.nan
