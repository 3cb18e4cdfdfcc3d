"""Packing against the released code itself (mesh_tensorflow.transformer.dataset.pack_or_pad in
the original t5 venv): the default strategy must give the same rows, segment ids and positions,
in the same order, on real task rows and on generated lengths
(1 token up to each feature's full length)."""
import numpy as np
import pytest

from t5mtf.data import packing, registry
from tests.peers import t5_env

pytestmark = pytest.mark.slow

LENGTH = {"inputs": 128, "targets": 32}


def real_examples(n=300):
  """Tokenised real rows of varied lengths (SST-2, RTE, SQuAD), trimmed as training trims."""
  out = []
  for name in ("glue_sst2_local", "glue_rte_local", "squad_v010_local"):
    ds = registry.get_task(name).get_dataset(LENGTH, "train", shuffle=False)
    out += [{k: ex[k].tolist() for k in LENGTH} for ex in ds.take(n).as_numpy_iterator()]
  return out


def generated_examples(n=700, seed=0):
  """Generated data: random lengths in [1, L] (a few exactly L), random non-zero ids."""
  rng = np.random.RandomState(seed)
  out = []
  for _ in range(n):
    ex = {}
    for k, cap in LENGTH.items():
      size = cap if rng.rand() < 0.05 else rng.randint(1, cap + 1)
      ex[k] = rng.randint(2, 1000, size).tolist()
    out.append(ex)
  return out


def ours(examples):
  import tensorflow as tf
  ds = tf.data.Dataset.from_generator(
      lambda: ({k: np.asarray(e[k], np.int32) for k in LENGTH} for e in examples),
      output_signature={k: tf.TensorSpec([None], tf.int32) for k in LENGTH})
  return list(packing.pack(ds, LENGTH).as_numpy_iterator())


@pytest.mark.parametrize("kind", ["real", "generated"])
def test_default_packing_gives_the_released_rows(kind):
  examples = real_examples() if kind == "real" else generated_examples()
  theirs = t5_env.ok(t5_env.ask([{"op": "pack", "length": LENGTH,
                                  "examples": examples}])[0])
  mine = ours(examples)
  print(f"{kind}: {len(examples)} examples -> ours {len(mine)} rows, original {len(theirs)}")
  assert len(mine) == len(theirs)
  names = {"": "", "_segment_ids": "_segmentation", "_positions": "_position"}
  different = 0
  for a, b in zip(mine, theirs):
    if any(a[k + s].tolist() != b[k + t] for k in LENGTH for s, t in names.items()):
      different += 1
  assert different == 0, f"{different} of {len(mine)} rows differ"
