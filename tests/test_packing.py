import numpy as np
import pytest
import tensorflow as tf

from t5mtf.data import packing
from tests import helpers


def examples(n, seed=0, max_in=12, max_tg=6):
  rng = np.random.RandomState(seed)
  return [{"inputs": rng.randint(3, 90, size=rng.randint(1, max_in + 1)).astype(np.int32),
           "targets": rng.randint(3, 90, size=rng.randint(1, max_tg + 1)).astype(np.int32)}
          for _ in range(n)]


def to_dataset(exs):
  return tf.data.Dataset.from_generator(
      lambda: iter(exs), output_signature={k: tf.TensorSpec([None], tf.int32)
                                           for k in ("inputs", "targets")})


def unpack(rows, key):
  out = []
  for r in rows:
    for s in range(1, r[key + "_segment_ids"].max() + 1):
      sel = r[key + "_segment_ids"] == s
      out.append(r[key][sel])
      assert (r[key + "_positions"][sel] == np.arange(sel.sum())).all(), "positions restart"
    assert (r[key][r[key + "_segment_ids"] == 0] == 0).all(), "padding is 0"
  return out


def test_small_worked_example():
  ds = to_dataset([{"inputs": np.array([7, 8], np.int32), "targets": np.array([3], np.int32)},
                   {"inputs": np.array([9], np.int32), "targets": np.array([4, 5], np.int32)},
                   {"inputs": np.array([6, 6, 6], np.int32), "targets": np.array([2], np.int32)}])
  helpers.assert_dataset(packing.pack(ds, {"inputs": 4, "targets": 3}), [
      {"inputs": [7, 8, 9, 0], "inputs_segment_ids": [1, 1, 2, 0],
       "inputs_positions": [0, 1, 0, 0], "targets": [3, 4, 5],
       "targets_segment_ids": [1, 2, 2], "targets_positions": [0, 0, 1]},
      {"inputs": [6, 6, 6, 0], "inputs_segment_ids": [1, 1, 1, 0],
       "inputs_positions": [0, 1, 2, 0], "targets": [2, 0, 0],
       "targets_segment_ids": [1, 0, 0], "targets_positions": [0, 0, 0]},
  ])


@pytest.mark.parametrize("strategy", packing.STRATEGIES)
def test_packing_conserves_every_token(strategy):
  exs = examples(500)
  rows = list(packing.pack(to_dataset(exs), {"inputs": 16, "targets": 8}, strategy)
              .as_numpy_iterator())
  got = sorted(zip(map(tuple, unpack(rows, "inputs")), map(tuple, unpack(rows, "targets"))))
  assert got == sorted((tuple(e["inputs"]), tuple(e["targets"])) for e in exs)
  greedy = len(list(packing.pack(to_dataset(exs), {"inputs": 16, "targets": 8}, "greedy")))
  if strategy == "first_fit":
    assert len(rows) < greedy, "first-fit packs more densely than the released greedy packing"


def test_greedy_keeps_order():
  exs = examples(100, seed=2)
  rows = list(packing.pack(to_dataset(exs), {"inputs": 16, "targets": 8}, "greedy")
              .as_numpy_iterator())
  for g, e in zip(unpack(rows, "inputs"), exs):
    np.testing.assert_array_equal(g, e["inputs"])


def test_segments_never_mix_examples_across_features():
  exs = examples(200, seed=1)
  rows = list(packing.pack(to_dataset(exs), {"inputs": 16, "targets": 8}).as_numpy_iterator())
  for r in rows:
    assert r["inputs_segment_ids"].max() == r["targets_segment_ids"].max()


def test_pad_one_example_per_row():
  ds = to_dataset([{"inputs": np.array([5, 6, 7], np.int32), "targets": np.array([8], np.int32)}])
  helpers.assert_dataset(packing.pad(ds, {"inputs": 4, "targets": 2}), [
      {"inputs": [5, 6, 7, 0], "inputs_segment_ids": [1, 1, 1, 0],
       "inputs_positions": [0, 1, 2, 0], "targets": [8, 0], "targets_segment_ids": [1, 0],
       "targets_positions": [0, 0]}])


def test_concat_and_split_streams_documents():
  from t5mtf.data import preprocessors as prep
  ds = helpers.token_dataset([[1, 2, 3], [4, 5, 6, 7], [8], [9, 10, 11, 12, 13, 14, 15]])
  helpers.assert_dataset(prep.concat_and_split(ds, 4), [
      {"targets": [1, 2, 3, 4]}, {"targets": [5, 6, 7, 8]}, {"targets": [9, 10, 11, 12]}])
