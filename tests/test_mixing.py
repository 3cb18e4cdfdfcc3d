import collections

import numpy as np
import pytest
import tensorflow as tf

from t5mtf.data import mixing


SIZES = [400_000, 50_000, 2_000, 635]  # Roughly MNLI, SST-2, CB-like and RTE-like sizes.


def test_rate_formulas():
  p = mixing.proportional_rates_from_sizes(SIZES, limit=2**16)
  expected = np.minimum(SIZES, 2**16) / np.minimum(SIZES, 2**16).sum()
  np.testing.assert_allclose(p, expected)
  t = mixing.temperature_rates_from_sizes(SIZES, temperature=2.0, limit=2**16)
  np.testing.assert_allclose(t, np.sqrt(expected) / np.sqrt(expected).sum())
  np.testing.assert_allclose(mixing.temperature_rates_from_sizes(SIZES, 1.0, 2**16), p)
  big_t = mixing.temperature_rates_from_sizes(SIZES, 1e9, 2**16)
  np.testing.assert_allclose(big_t, [0.25] * 4, atol=1e-6)


@pytest.mark.parametrize("rates_fn", [
    lambda: mixing.proportional_rates_from_sizes(SIZES, 2**16),
    lambda: mixing.temperature_rates_from_sizes(SIZES, 2.0, 2**16),
    lambda: [0.25] * 4,
])
def test_sampled_rates_within_one_percent_over_100000_draws(rates_fn):
  rates = rates_fn()
  datasets = [tf.data.Dataset.from_tensors(i).repeat() for i in range(4)]
  ds = mixing.sample(datasets, rates, seed=5).take(100_000).batch(10_000)
  counts = collections.Counter(np.concatenate(list(ds.as_numpy_iterator())).tolist())
  for i, r in enumerate(rates):
    assert abs(counts[i] / 100_000 - r) < 0.01, (i, counts[i], r)


def test_sample_is_deterministic():
  datasets = [tf.data.Dataset.from_tensors(i).repeat() for i in range(3)]
  a = list(mixing.sample(datasets, [0.2, 0.3, 0.5], seed=1).take(200).as_numpy_iterator())
  b = list(mixing.sample(datasets, [0.2, 0.3, 0.5], seed=1).take(200).as_numpy_iterator())
  assert a == b


def test_truncate_to_tokens_then_repeat():
  ds = tf.data.Dataset.from_tensor_slices({"targets": tf.ragged.constant(
      [[1, 2, 3], [4, 5], [6, 7, 8, 9], [10]])}).map(lambda ex: {"targets": ex["targets"]})
  kept = [ex["targets"].tolist() for ex in
          mixing.truncate_to_tokens(ds, 6).repeat(2).as_numpy_iterator()]
  assert kept == [[1, 2, 3], [4, 5], [1, 2, 3], [4, 5]]


def test_rates_must_be_positive():
  with pytest.raises(ValueError, match="positive"):
    mixing.sample([tf.data.Dataset.range(2)] * 2, [0, 0], seed=0)


def test_a_task_without_training_examples_gets_rate_zero(clean_registry):
  """A task with 0 training examples, an unknown count or no training split is not sampled."""
  from t5mtf.data import registry, sources
  class Sized(sources.Source):
    def __init__(self, n, splits=("train", "validation")):
      self.n, self.splits = n, splits
    def num_examples(self, split):
      return self.n
  tasks = [registry.Task("big", Sized(100)), registry.Task("empty", Sized(0)),
           registry.Task("unknown", Sized(None)), registry.Task("eval_only", Sized(5, ("test",)))]
  for spec in ("proportional:50", "temperature:2"):
    rate = mixing.rate_fn(spec)
    assert [rate(t) for t in tasks][1:] == [0, 0, 0], spec
    assert rate(tasks[0]) > 0
  equal = mixing.rate_fn("equal")  # Equal mixing still skips a task it cannot train on.
  assert [equal(t) for t in tasks] == [1, 1, 1, 0]


def test_fixed_counts_are_not_capped_and_halved_counts_count_half(clean_registry):
  """The released GLUE weights enter examples-proportional mixing uncapped by K; a halved task
  (GLUE's and SuperGLUE's RTE) counts half its examples before the cap and the temperature."""
  from t5mtf.data import registry, sources
  class Sized(sources.Source):
    splits = ("train",)
    def num_examples(self, split):
      return 1000
  big, twin = registry.Task("big", Sized()), registry.Task("twin", Sized())
  rate = mixing.rate_fn("proportional:100", counts={"big": 5000}, halved=("twin",))
  assert (rate(big), rate(twin)) == (5000, 100)
  rate = mixing.rate_fn("proportional:1000", halved=("twin",))
  assert rate(twin) == 500
  rate = mixing.rate_fn("temperature:2", limit=2000, counts={"big": 5000}, halved=("twin",))
  assert (rate(big), rate(twin)) == (2000 ** 0.5, 500 ** 0.5)
