"""Invariants of the pre-training objectives (§3.3) on generated token sequences."""
import numpy as np
import pytest
import tensorflow as tf

from t5mtf.data import objectives
from tests import helpers

VOCAB = helpers.MockVocabulary()
FEATURES = helpers.mock_features()


def run(objective, sequences, seed=0, **kw):
  ds = objective(helpers.token_dataset(sequences), output_features=FEATURES, seed=seed, **kw)
  return list(ds.as_numpy_iterator())


def reconstruct(inputs, targets):
  """Puts each sentinel's target span back in place of the sentinel in the inputs."""
  spans, current = {}, None
  for t in targets:
    if t >= VOCAB.base_vocab_size:
      current = int(t)
      spans[current] = []
    else:
      spans[current].append(int(t))
  out = []
  for t in inputs:
    out.extend(spans[int(t)] if t >= VOCAB.base_vocab_size else [int(t)])
  return out


def sentinels(seq):
  return [int(t) for t in seq if t >= VOCAB.base_vocab_size]


@pytest.mark.parametrize("objective", [objectives.span_corruption, objectives.iid_replace_spans])
def test_sentinel_objectives_reconstruct_the_original(objective):
  rng = np.random.RandomState(0)
  # The mock vocabulary has 10 sentinels: lengths stay below 10 spans.
  sequences = [rng.randint(3, 90, size=n).tolist() for n in (2, 5, 17, 30, 40)]
  for seq, ex in zip(sequences, run(objective, sequences)):
    assert reconstruct(ex["inputs"], ex["targets"]) == seq
    s_in, s_tg = sentinels(ex["inputs"]), sentinels(ex["targets"])
    assert s_in == list(range(99, 99 - len(s_in), -1)), "sentinels in order, extra_id_0 first"
    assert s_tg[:len(s_in)] == s_in


def test_more_spans_than_sentinels_reuse_the_last_sentinel():
  ids = tf.range(3, 43)
  mask = tf.range(40) % 2 == 0  # 20 spans, 10 sentinels.
  inputs = objectives.noise_span_to_unique_sentinel(ids, mask, VOCAB).numpy()
  assert (inputs[::2] == [99, 98, 97, 96, 95, 94, 93, 92, 91] + [90] * 11).all()


def test_figure_2_worked_example_shape():
  """Figure 2: 'Thank you for inviting me to your party last week .' with 'for inviting' and
  'last' dropped gives inputs 'Thank you <X> me to your party <Y> week .' and targets
  '<X> for inviting <Y> last <Z>'. Words stand as ids 10..20 here."""
  words = "Thank you for inviting me to your party last week .".split()
  ids = tf.constant(list(range(10, 10 + len(words))))
  mask = tf.constant([w in ("for", "inviting", "last") for w in words])
  inputs = objectives.noise_span_to_unique_sentinel(ids, mask, VOCAB).numpy().tolist()
  targets = objectives.nonnoise_span_to_unique_sentinel(ids, mask, VOCAB).numpy().tolist()
  assert inputs == [10, 11, 99, 14, 15, 16, 17, 98, 19, 20]
  assert targets == [99, 12, 13, 98, 18, 97]


def test_span_corruption_statistics_over_10000_examples():
  """15% +- 0.5 corrupted and mean span length 3 +- 0.1 at length 512 (§3.3.4)."""
  seeds = tf.random.experimental.stateless_split([7, 7], 10_000)
  masks = tf.function(lambda: tf.map_fn(  # In a graph: eager map_fn took 100 s here.
      lambda s: objectives.random_spans_noise_mask(512, s), seeds,
      fn_output_signature=tf.bool))().numpy()
  assert abs(masks.mean() - 0.15) < 0.005
  starts = masks[:, 1:] & ~masks[:, :-1]
  num_spans = starts.sum() + masks[:, 0].sum()
  assert abs(masks.sum() / num_spans - 3.0) < 0.1


def test_iid_noise_rate_and_determinism():
  seq = [list(range(3, 83)) * 6]
  a = run(objectives.iid_replace_spans, seq * 20, seed=3)
  b = run(objectives.iid_replace_spans, seq * 20, seed=3)
  c = run(objectives.iid_replace_spans, seq * 20, seed=4)
  assert all((x["inputs"] == y["inputs"]).all() for x, y in zip(a, b))
  assert any(len(x["inputs"]) != len(y["inputs"]) or (x["inputs"] != y["inputs"]).any()
             for x, y in zip(a, c))
  assert len({tuple(x["inputs"]) for x in a}) == 20, "each example gets its own noise"


@pytest.mark.parametrize("objective", [objectives.bert_style, objectives.mass_style,
                                       objectives.deshuffling])
def test_targets_are_the_original_text(objective):
  seq = list(range(3, 83))
  (ex,) = run(objective, [seq])
  assert ex["targets"].tolist() == seq
  assert len(ex["inputs"]) == len(seq)


def test_bert_style_rates():
  seq = [list(np.arange(3, 83)) * 25]
  exs = run(objectives.bert_style, seq * 20, seed=1)
  inputs = np.concatenate([e["inputs"] for e in exs])
  orig = np.concatenate([e["targets"] for e in exs])
  changed = inputs != orig
  mask = inputs == VOCAB.sentinel_id(0)
  assert abs(changed.mean() - 0.15) < 0.01
  assert abs(mask.sum() / changed.sum() - 0.9) < 0.03  # ~10% random (a few equal the original)


def test_mass_style_uses_only_mask_token():
  seq = list(range(3, 83)) * 5
  (ex,) = run(objectives.mass_style, [seq])
  changed = ex["inputs"] != np.asarray(seq)
  assert changed.any() and (ex["inputs"][changed] == 99).all()


def test_deshuffling_is_a_permutation():
  seq = list(range(3, 83))
  (ex,) = run(objectives.deshuffling, [seq])
  assert sorted(ex["inputs"].tolist()) == seq and ex["inputs"].tolist() != seq


def test_drop_tokens_splits_the_text():
  seq = list(range(3, 83)) * 3
  (ex,) = run(objectives.iid_drop_tokens, [seq])
  assert sorted(ex["inputs"].tolist() + ex["targets"].tolist()) == sorted(seq)
  assert not set(sentinels(ex["inputs"]))


def test_prefix_lm_concatenation_is_the_text():
  """A non-empty prefix and target for two tokens or more; one token is all target (as the
  released code splits it)."""
  seqs = [list(range(3, 3 + n)) for n in (1, 2, 10, 80)]
  exs = run(objectives.prefix_lm, seqs)
  for seq, ex in zip(seqs, exs):
    assert ex["inputs"].tolist() + ex["targets"].tolist() == seq
    assert len(ex["targets"]) >= 1 and len(ex["inputs"]) >= min(1, len(seq) - 1)
  assert exs[0]["inputs"].tolist() == [] and exs[0]["targets"].tolist() == [3]


@pytest.mark.parametrize("density,span,expected", [(0.15, 3.0, (568, 114))])
def test_random_spans_helper_gives_t5_lengths(density, span, expected):
  assert objectives.random_spans_helper(512, density, span) == expected


@pytest.mark.parametrize("density,span", [(0.1, 3), (0.25, 3), (0.5, 3), (0.15, 2), (0.15, 5),
                                          (0.15, 10)])
def test_tables_6_and_7_settings_fit(density, span):
  """Every corruption rate / span length of Tables 6-7 yields inputs of exactly 512."""
  length, target_len = objectives.random_spans_helper(512, density, span)
  rng = np.random.RandomState(0)
  exs = run(objectives.span_corruption, [rng.randint(3, 90, size=length).tolist()] * 4,
            noise_density=density, mean_noise_span_length=span)
  for ex in exs:
    assert len(ex["inputs"]) + 1 <= 512 and len(ex["targets"]) + 1 <= target_len


def test_unknown_objective_names_closest():
  with pytest.raises(ValueError, match="span_corruption"):
    objectives.get_objective("span_corruptoin")


def test_batched_span_corruption_reconstructs_and_keeps_the_rates():
  """Equal-length pieces take the batched path: same invariants, same statistics."""
  rng = np.random.RandomState(1)
  pieces = rng.randint(3, 90, size=(300, 40)).astype(np.int32)
  ds = tf.data.Dataset.from_tensor_slices({"targets": pieces})
  assert ds.element_spec["targets"].shape == [40]
  exs = list(objectives.span_corruption(ds, FEATURES, seed=2).as_numpy_iterator())
  assert len(exs) == 300
  for piece, ex in zip(pieces, exs):
    assert reconstruct(ex["inputs"], ex["targets"]) == piece.tolist()
  masks = objectives.random_spans_noise_mask_rows(2000, 512, tf.constant([3, 4])).numpy()
  assert abs(masks.mean() - 0.15) < 0.005
  starts = (masks[:, 1:] & ~masks[:, :-1]).sum() + masks[:, 0].sum()
  assert abs(masks.sum() / starts - 3.0) < 0.1
  again = list(objectives.span_corruption(ds, FEATURES, seed=2).as_numpy_iterator())
  assert all((a["inputs"] == b["inputs"]).all() for a, b in zip(exs, again))
