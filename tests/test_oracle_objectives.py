"""The pre-training objectives (§3.3) against the released code itself (t5==0.9.4 in its own
venv), in every part it fixes: how many noise tokens and spans a length gets
(random_spans_noise_mask), the raw-text and targets lengths that fit an inputs length
(random_spans_helper, for Table 6's corruption rates and Table 7's span lengths), and what
each transform makes of given tokens and a given noise mask (real text, generated masks).

Which tokens are noise is drawn by each side's own random numbers (ours stateless per example,
theirs seqio's stateless shuffle), so masks are compared by what the code fixes: the length,
the number of noise tokens, the number of noise spans, and a clean first token.
"""
import numpy as np
import pytest
import tensorflow as tf

from t5mtf.data import objectives, sources
from t5mtf.data import vocab as vocab_lib
from tests.peers import t5_env

pytestmark = pytest.mark.slow

LENGTHS = list(range(1, 130)) + [255, 256, 511, 512, 567, 568, 569, 1024]
# (noise density, mean span length): the baseline, Table 6's rates, Table 7's span lengths,
# and no noise at all.
SETTINGS = [(0.15, 3.0), (0.1, 3.0), (0.25, 3.0), (0.5, 3.0), (0.15, 2.0), (0.15, 5.0),
            (0.15, 8.0), (0.15, 10.0), (0.0, 3.0)]
INPUTS_LENGTHS = [64, 128, 256, 512, 1024]
RANDOM_DRAWS = 100_000
PREFIX_LENGTHS = list(range(13)) + [100, 511, 568]
PREFIX_DRAWS = 400
TRANSFORMS = ["noise_span_to_unique_sentinel", "nonnoise_span_to_unique_sentinel",
              "drop_noise_tokens", "drop_nonnoise_tokens", "noise_token_to_sentinel"]


def mask_shape(mask):
  """(length, noise tokens, noise spans, first token is noise)."""
  m = np.asarray(mask, bool)
  starts = m & ~np.concatenate([[False], m[:-1]])
  return len(m), int(m.sum()), int(starts.sum()), bool(m[0]) if len(m) else None


def real_tokens():
  """Token ids of real text shipped in data/pretrain, cut into pieces of varied lengths."""
  vocab = vocab_lib.get_default_vocabulary()
  text = open(sources.data_path("pretrain", "wiki_00.txt"), encoding="utf-8").read()
  ids = vocab.encode(text[:40000])
  rng = np.random.RandomState(0)
  pieces, start = [], 0
  for n in list(rng.randint(1, 300, 40)) + [1, 2, 3, 568]:
    pieces.append(ids[start:start + n])
    start += n
  return pieces


def masks_for(tokens, rng):
  """Generated masks for one token list: random at two densities and the edge cases."""
  n = len(tokens)
  out = [rng.rand(n) < 0.15, rng.rand(n) < 0.5, np.zeros(n, bool), np.ones(n, bool),
         np.arange(n) == 0, np.arange(n) == n - 1, np.arange(n) % 2 == 1]
  return [m for m in out if mask_shape(m)[2] <= 100]  # >100 spans: a documented deviation.


@pytest.fixture(scope="module")
def cases():
  rng = np.random.RandomState(1)
  transform_cases = [{"tokens": list(map(int, t)), "mask": m.tolist()}
                     for t in real_tokens() for m in masks_for(t, rng)]
  jobs = [{"op": "noise", "fn": "random_spans_noise_mask", "lengths": LENGTHS,
           "noise_density": d, "mean_noise_span_length": s} for d, s in SETTINGS]
  jobs += [{"op": "call", "module": "t5.data.preprocessors", "fn": "random_spans_helper",
            "kwargs": {"inputs_length": n, "noise_density": d, "mean_noise_span_length": s,
                       "extra_tokens_per_span_inputs": 1, "extra_tokens_per_span_targets": 1}}
           for d, s in SETTINGS for n in INPUTS_LENGTHS]
  jobs += [{"op": "noise", "fn": fn, "cases": transform_cases} for fn in TRANSFORMS]
  jobs += [{"op": "noise", "fn": "noise_token_to_random_token",  # BERT-style's random tokens.
            "cases": [{"tokens": [5] * RANDOM_DRAWS, "mask": [True] * RANDOM_DRAWS}]}]
  jobs += [{"op": "noise", "fn": "random_prefix_noise_mask", "lengths": PREFIX_LENGTHS,
            "draws": PREFIX_DRAWS}]
  answers = [t5_env.ok(a) for a in t5_env.ask(jobs)]
  prefixes = answers.pop()
  random_draws = answers.pop()[0]
  masks = dict(zip(SETTINGS, answers[:len(SETTINGS)]))
  helper = answers[len(SETTINGS):len(SETTINGS) * (1 + len(INPUTS_LENGTHS))]
  transforms = dict(zip(TRANSFORMS, answers[-len(TRANSFORMS):]))
  return masks, helper, transform_cases, transforms, random_draws, prefixes


@pytest.mark.parametrize("setting", SETTINGS, ids=[f"density{d}-span{s}" for d, s in SETTINGS])
def test_noise_masks_have_the_released_counts(cases, setting):
  """Per length, one example at a time and batched (what pre-training runs), the released
  number of noise tokens and spans, starting clean."""
  density, span = setting
  theirs = [mask_shape(m) for m in cases[0][setting]]
  seed = tf.constant([3, 4], tf.int32)
  ours = [mask_shape(objectives.random_spans_noise_mask(n, seed, density, span).numpy())
          for n in LENGTHS]
  assert ours == theirs
  for n, shape in zip(LENGTHS, theirs):
    rows = objectives.random_spans_noise_mask_rows(3, n, seed, density, span).numpy()
    assert [mask_shape(r) for r in rows] == [shape] * 3, n


def test_lengths_that_fit_are_the_released(cases):
  """random_spans_helper: the raw text and targets lengths for an inputs length (512 -> 568
  and 114 for the baseline), at every corruption rate and span length of Tables 6 and 7."""
  theirs = cases[1]
  ours = [list(objectives.random_spans_helper(n, d, s)) for d, s in SETTINGS
          for n in INPUTS_LENGTHS]
  different = [(setting, n, o, t) for (setting, n), o, t in zip(
      [(st, n) for st in SETTINGS for n in INPUTS_LENGTHS], ours, theirs) if o != t]
  assert not different, different


@pytest.mark.parametrize("fn", TRANSFORMS)
def test_transforms_give_the_released_tokens(cases, fn):
  """Real text, generated masks (random, none, all, first, last, alternate): the same tokens."""
  _, _, transform_cases, transforms, _, _ = cases
  vocab = vocab_lib.get_default_vocabulary()
  ours_fn = getattr(objectives, fn)
  different = 0
  for case, theirs in zip(transform_cases, transforms[fn]):
    ours = ours_fn(tf.constant(case["tokens"], tf.int32), tf.constant(case["mask"]), vocab)
    different += ours.numpy().tolist() != theirs
  print(f"{fn}: {len(transform_cases)} cases")
  assert different == 0, f"{different} of {len(transform_cases)} cases differ"


def test_random_tokens_come_from_the_released_range(cases):
  """BERT-style's random replacements: drawn, on both sides, from every id past pad/EOS/unk up
  to the vocabulary's size, sentinels included (100 of 32,097 ids: about 0.31% of draws)."""
  vocab = vocab_lib.get_default_vocabulary()
  tokens = tf.fill([RANDOM_DRAWS], 5)
  ours = objectives.noise_token_to_random_token_or_sentinel(
      tokens, tf.ones([RANDOM_DRAWS], tf.bool), vocab, tf.constant([5, 6]), random_prob=1.0)
  for name, draws in (("ours", ours.numpy()), ("released", np.asarray(cases[4]))):
    share = np.mean(draws >= vocab.base_vocab_size)
    assert draws.min() >= 3 and draws.max() < vocab.vocab_size, name
    assert 0.0015 < share < 0.005, (name, share)


def test_prefix_lm_splits_where_the_released_code_does(cases):
  """The prefix LM's split (random_prefix_noise_mask), 400 draws a length on each side: the
  same prefix lengths occur for texts of 0-12 tokens (each of at most 11 values is missed by
  400 draws with odds under 1e-16), a 1-token text's prefix is empty, and long texts split
  uniformly in [1, length - 1] on both sides (two-sample KS test)."""
  from scipy import stats
  for n, theirs in zip(PREFIX_LENGTHS, cases[5]):
    ours = [int(tf.reduce_sum(tf.cast(objectives.random_prefix_noise_mask(
        n, tf.constant([i, n])), tf.int32))) for i in range(PREFIX_DRAWS)]
    if n <= 12:
      assert sorted(set(ours)) == sorted(set(theirs)), n
    else:
      assert min(ours + theirs) >= 1 and max(ours + theirs) <= n - 1, n
      assert stats.ks_2samp(ours, theirs).pvalue > 1e-3, n
  assert set(cases[5][1]) == {0}
