"""Shared test helpers: ``assert_dataset``, fixed-id mock vocabulary, tiny datasets."""
import numpy as np
import tensorflow as tf

from t5mtf.data import registry


def assert_dataset(dataset, expected):
  """Asserts that ``dataset`` yields exactly the dicts in ``expected`` (lists/strings/numbers)."""
  actual = list(dataset.as_numpy_iterator())
  assert len(actual) == len(expected), f"{len(actual)} examples, expected {len(expected)}"
  for i, (a, e) in enumerate(zip(actual, expected)):
    assert sorted(a) == sorted(e), f"example {i}: keys {sorted(a)} != {sorted(e)}"
    for k in e:
      got = a[k]
      got = got.decode() if isinstance(got, bytes) else got
      if isinstance(e[k], str):
        assert got == e[k], f"example {i} [{k}]: {got!r} != {e[k]!r}"
      else:
        np.testing.assert_array_equal(got, e[k], err_msg=f"example {i} [{k}]")


class MockVocabulary:
  """Ids fixed by hand: vocab_size 100 with 10 sentinels (ids 90..99, <extra_id_0> = 99)."""
  base_vocab_size = 90
  extra_ids = 10
  vocab_size = 100
  pad_id, eos_id, unk_id = 0, 1, 2

  def sentinel_id(self, i=0):
    return self.vocab_size - 1 - i

  def tf_encode(self, text):
    return tf.strings.to_number(tf.strings.split(text), tf.int32)


def mock_features(add_eos=True):
  v = MockVocabulary()
  return {"inputs": registry.Feature(v, add_eos), "targets": registry.Feature(v, add_eos)}


def token_dataset(sequences, key="targets"):
  """A dataset of ``{key: int32 [n]}`` from lists (generated data, as the test says)."""
  return tf.data.Dataset.from_generator(
      lambda: ({key: np.asarray(s, np.int32)} for s in sequences),
      output_signature={key: tf.TensorSpec([None], tf.int32)})
