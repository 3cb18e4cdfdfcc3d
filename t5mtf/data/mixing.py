"""Mixing strategies of §3.5.2 and data set truncation of §3.4.2 (Table 9).

Rates are computed from each task's size ``e_n`` (number of examples in the training split):
- examples-proportional: ``r_m = min(e_m, K) / sum_n min(e_n, K)``;
- temperature-scaled: the proportional rates with limit K raised to ``1/T`` and renormalised
  (T = 1 is proportional, large T approaches equal);
- equal: ``1/M``.
"""
import numpy as np
import tensorflow as tf


def _sizes(tasks, split="train"):
  sizes = []
  for t in tasks:
    n = t.num_input_examples(split)
    if n is None:
      raise ValueError(f"task {t.name!r} does not know its size; give explicit rates")
    sizes.append(n)
  return np.asarray(sizes, np.float64)


def _normalise(r):
  r = np.asarray(r, np.float64)
  if r.sum() <= 0:
    raise ValueError(f"mixing rates must have a positive sum, got {r.tolist()}")
  return (r / r.sum()).tolist()


def proportional_rates_from_sizes(sizes, limit):
  return _normalise(np.minimum(sizes, limit))


def temperature_rates_from_sizes(sizes, temperature, limit):
  return _normalise(np.asarray(proportional_rates_from_sizes(sizes, limit)) ** (1.0 / temperature))


def examples_proportional_rates(tasks, limit=2**21):
  return proportional_rates_from_sizes(_sizes(tasks), limit)


def temperature_scaled_rates(tasks, temperature=2.0, limit=2**21):
  return temperature_rates_from_sizes(_sizes(tasks), temperature, limit)


def equal_rates(tasks):
  return _normalise(np.ones(len(tasks)))


def rate_fn(spec, limit=2**21, unbounded=(), counts=None, halved=()):
  """A mixing strategy by name -> ``rate(task)`` (unnormalised, as ``Mixture`` takes):
  ``"proportional:K"`` min(e_n, K); ``"temperature:T"`` min(e_n, limit)^(1/T); ``"equal"``.
  Tasks named in ``unbounded`` count as bigger than any K or limit, as C4 is (§3.5.2).
  ``counts`` ({task name: e_n}) replaces a task's own count and, as the released mixtures'
  fixed GLUE and SuperGLUE weights are, is not capped by K. Tasks named in ``halved`` count
  half their examples (two tasks holding the same data)."""
  kind, _, arg = spec.partition(":")
  if kind not in ("proportional", "temperature", "equal") or (kind != "equal") != bool(arg):
    raise ValueError(f"mixing {spec!r}: use proportional:K, temperature:T or equal")
  if kind == "equal":  # Tasks without training data (evaluation only) are not drawn.
    return lambda task: 1.0 if "train" in task.splits else 0.0
  base, _, power = arg.partition("**")  # "2**19" reads like the paper.
  value = float(base) ** float(power) if power else float(arg)

  def size(task, cap):
    """A task with no training split, or 0 or an unknown number of examples, gets rate 0."""
    if task.name in unbounded:
      return cap
    share = 0.5 if task.name in halved else 1.0
    if counts and task.name in counts:
      n = counts[task.name] * share
      return n if kind == "proportional" else min(n, cap)
    n = task.num_input_examples("train") if "train" in task.splits else 0
    return min(float(n or 0) * share, cap)
  if kind == "proportional":
    return lambda task: size(task, value)
  return lambda task: size(task, limit) ** (1.0 / value)


def sample(datasets, rates, seed):
  """Draws from ``datasets`` with probabilities ``rates`` (deterministic given seed)."""
  rates = _normalise(rates)
  if len(datasets) == 1:
    return datasets[0]
  return tf.data.Dataset.sample_from_datasets(datasets, weights=rates, seed=seed,
                                              stop_on_empty_dataset=False)


def truncate_to_tokens(dataset, num_tokens, feature="targets"):
  """Keeps the first examples whose ``feature`` tokens sum to at most ``num_tokens``; with
  ``.repeat()`` this is Table 9's "data set of N tokens, repeated" (§3.4.2)."""
  def step(total, ex):
    total += tf.cast(tf.size(ex[feature]), tf.int64)
    return total, (total, ex)
  ds = dataset.scan(tf.constant(0, tf.int64), step)
  return ds.take_while(lambda total, ex: total <= num_tokens).map(lambda total, ex: ex)
