"""Ensembles (§3.6): members' logits averaged at decode and score time."""
import numpy as np
import pytest
import tensorflow as tf

from t5mtf.models import decoding, transformer
from tests import model_helpers as mh
from tests.test_train import run_main

CONFIG = mh.tiny_config()


def _member_weights(seed):
  """A tiny model's weights, redrawn N(0, 0.5) from ``seed`` (generated, not trained)."""
  out = mh.run_graph(CONFIG, lambda m, f, g: {"l": m.loss(f, train=False)[0]},
                     mh.random_features(), weight_scale=0.5, seed=seed, return_variables=True)
  return out["variables"]


def _members(model, n=2):
  return [transformer.T5Model(CONFIG, model.mesh, False, f"member_{k}/") for k in range(n)]


def _log_softmax(x):
  x = x - x.max(-1, keepdims=True)
  return x - np.log(np.exp(x).sum(-1, keepdims=True))


@pytest.fixture(scope="module")
def weights():
  a, b = _member_weights(1), _member_weights(2)
  assert not np.allclose(a["shared/embedding"], b["shared/embedding"])
  both = {f"member_0/{n}": v for n, v in a.items()}
  both.update({f"member_1/{n}": v for n, v in b.items()})
  return a, b, both


def test_ensemble_scores_are_the_log_softmax_of_averaged_logits(weights):
  a, b, both = weights
  feats = mh.random_features(seed=3)
  single = lambda m, f, g: {"logits": m.logits(f)}
  logits_a = mh.run_graph(CONFIG, single, feats, values=a)["logits"]
  logits_b = mh.run_graph(CONFIG, single, feats, values=b)["logits"]
  ll = mh.run_graph(CONFIG, lambda m, f, g: {"ll": transformer.ensemble_token_log_likelihood(
      _members(m), f)}, feats, values=both)["ll"]
  expected = _log_softmax((logits_a + logits_b) / 2)
  expected = np.take_along_axis(expected, feats["targets"][..., None], -1)[..., 0]
  expected *= feats["targets"] != 0
  np.testing.assert_allclose(ll, expected, atol=1e-4)
  # Averaging logits is not averaging probabilities: the test would catch that mistake.
  probs = np.log((np.exp(_log_softmax(logits_a)) + np.exp(_log_softmax(logits_b))) / 2)
  probs = np.take_along_axis(probs, feats["targets"][..., None], -1)[..., 0]
  assert np.abs((probs - expected)[feats["targets"] != 0]).max() > 1e-3


def test_ensemble_greedy_equals_argmax_of_averaged_teacher_forced_logits(weights):
  a, b, both = weights
  feats = mh.random_features(seed=4, packed=False)
  decode = lambda m, f, g: {"out": decoding.greedy_decode(_members(m), f["inputs"],
                                                           f["inputs_segment_ids"], 8)}
  out = mh.run_graph(CONFIG, decode, feats, values=both)["out"]
  assert len(set(out.ravel())) > 3, "non-degenerate"
  forced = dict(feats, targets=out, targets_segment_ids=np.ones_like(out))
  single = lambda m, f, g: {"logits": m.logits(f)}
  mean = (mh.run_graph(CONFIG, single, forced, values=a)["logits"] +
          mh.run_graph(CONFIG, single, forced, values=b)["logits"]) / 2
  for row, am in zip(out, mean.argmax(-1)):
    n = list(row).index(1) + 1 if 1 in row else len(row)
    assert row[:n].tolist() == am[:n].tolist()
  beam = mh.run_graph(CONFIG, lambda m, f, g: {"out": decoding.beam_search_decode(
      _members(m), f["inputs"], f["inputs_segment_ids"], 8, beam_size=1)}, feats,
      values=both)["out"]
  np.testing.assert_array_equal(beam, out)


@pytest.mark.slow
def test_ensemble_of_model_dirs_from_the_command_line(tmp_path):
  """Two trained model_dirs: scoring with the ensemble of (a, a) equals a alone; (a, b) differs
  from both; the members are only read."""
  for name, seed in (("a", 1), ("b", 2)):
    run_main(tmp_path / name, "--gin_param=RunSettings.train_steps=2",
             "--gin_param=RunSettings.save_checkpoints_steps=2", f"--gin_param=RunSettings.seed={seed}")
  lines = tmp_path / "in.tsv"
  lines.write_text("summarize: the cat sat on the mat\tthe cat sat\nhello world\tworld\n")

  def score(model_dir, members=()):
    out = tmp_path / f"scores_{model_dir.name}_{len(members)}.txt"
    extra = [f"--gin_param=RunSettings.ensemble_model_dirs={tuple(str(m) for m in members)!r}"]
    run_main(model_dir, "--mode=score", f"--input_file={lines}", f"--output_file={out}",
             *(extra if members else []))
    return np.array([float(x) for x in out.read_text().split()])
  a, b = score(tmp_path / "a"), score(tmp_path / "b")
  aa = score(tmp_path / "ens_aa", (tmp_path / "a", tmp_path / "a"))
  ab = score(tmp_path / "ens_ab", (tmp_path / "a", tmp_path / "b"))
  np.testing.assert_allclose(aa, a, atol=1e-4)
  assert not np.allclose(ab, a, atol=1e-3) and not np.allclose(ab, b, atol=1e-3)
  ckpt = tf.train.latest_checkpoint(str(tmp_path / "ens_ab" / "ensemble"))
  np.testing.assert_array_equal(tf.train.load_variable(ckpt, "member_1/shared/embedding"),
                                tf.train.load_variable(str(tmp_path / "b"), "shared/embedding"))
  assert sorted(p.name for p in (tmp_path / "a").iterdir() if "ckpt-2" in p.name)  # Untouched.
