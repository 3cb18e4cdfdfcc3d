"""Decoding against the released predict path itself (the original t5 venv: t5's gin files,
tpu_estimator_model_fn, Bitransformer.decode): the same weights (a model_dir the original code
wrote) and the same real inputs give the same strings, greedy and beam search (beam 4, alpha
0.6), with our default beam search; the exhaustive option is reported beside it.

The released beam search stops at min(inputs length, 1.5 x longest input + 10) tokens; the
inputs here are long enough that the limit is the inputs length, which we use as decode_length.
"""
import numpy as np
import pytest

from t5mtf.data import registry, vocab as vocab_lib
from t5mtf.models import config as config_lib
from t5mtf.train import loop, settings as settings_lib
from tests.peers import t5_env

pytestmark = pytest.mark.slow

LENGTH = 16
VOCAB = 32128
PEER = ["d_model = 32", "d_ff = 64", "num_heads = 4", "d_kv = 8", "num_layers = 2",
        "dropout_rate = 0.0", 'utils.get_variable_dtype.activation_dtype = "float32"',
        'utils.get_variable_dtype.master_dtype = "float32"',
        'utils.get_variable_dtype.slice_dtype = "float32"']


def real_inputs(n=16):
  """SST-2 validation sentences, tokenised, trimmed to LENGTH - 1 tokens + EOS, padded."""
  ds = registry.get_task("glue_sst2_local").get_dataset({"inputs": LENGTH, "targets": 4},
                                                         "validation", shuffle=False)
  rows = []
  for ex in ds.as_numpy_iterator():
    if len(ex["inputs"]) >= 12:
      rows.append(np.pad(ex["inputs"], [0, LENGTH - len(ex["inputs"])]).astype(np.int32))
    if len(rows) == n:
      return np.stack(rows)


@pytest.fixture(scope="module")
def released(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("released")
  rng = np.random.RandomState(0)
  job = {"op": "train_step", "out_dir": str(tmp), "gin_file": "models/t5.1.0.small.gin",
         "gin_bindings": PEER, "vocab_size": VOCAB, "learning_rate": 0.01,
         "batch": {"inputs": rng.randint(2, 32000, (2, LENGTH)).tolist(),
                   "targets": rng.randint(2, 32000, (2, 8)).tolist()}}
  model_dir = t5_env.ok(t5_env.ask([job])[0])["model_dir"]
  inputs = real_inputs()
  import tensorflow as tf
  checkpoint = tf.train.latest_checkpoint(model_dir)
  jobs = [{"op": "decode", "out_dir": str(tmp / f"d{b}"), "gin_file": "models/t5.1.0.small.gin",
           "gin_bindings": PEER, "vocab_size": VOCAB, "beam_size": b, "alpha": 0.6,
           "inputs": inputs.tolist(), "checkpoint": checkpoint} for b in (1, 4)]
  targets = real_targets(inputs)
  jobs.append({"op": "decode", "out_dir": str(tmp / "score"),
               "gin_file": "models/t5.1.0.small.gin", "gin_bindings": PEER, "vocab_size": VOCAB,
               "beam_size": 1, "alpha": 0.6, "inputs": inputs.tolist(),
               "targets": targets.tolist(), "checkpoint": checkpoint})
  greedy, beam, scores = [t5_env.ok(a) for a in t5_env.ask(jobs)]
  return model_dir, inputs, {1: greedy, 4: beam, "targets": targets, "scores": scores}


def real_targets(inputs):
  """Targets to score: each row's SST-2 label and, for half the rows, another row's sentence
  (longer targets, padding of several lengths), EOS-terminated, padded to LENGTH."""
  vocab = vocab_lib.get_default_vocabulary()
  rows = []
  for i, _ in enumerate(inputs):
    ids = vocab.encode(["negative", "positive"][i % 2])
    if i % 2:
      ids = [int(t) for t in inputs[(i + 3) % len(inputs)] if t > 1][:LENGTH - 1 - len(ids)] + ids
    ids = ids[:LENGTH - 1] + [1]
    rows.append(ids + [0] * (LENGTH - len(ids)))
  return np.asarray(rows, np.int32)


def ours(model_dir, inputs, beam_size, search="prefilter"):
  config = config_lib.ModelConfig(d_model=32, d_ff=64, num_heads=4, d_kv=8,
                                  num_encoder_layers=2, num_decoder_layers=2, dropout_rate=0.0)
  settings = settings_lib.RunSettings(model_dir=model_dir, model=config, inputs_length=LENGTH,
                                      targets_length=LENGTH, batch_size=8, beam_size=beam_size,
                                      beam_search=search)
  vocab = vocab_lib.get_default_vocabulary()
  ids = loop.predict_ids(settings, [{"inputs": row} for row in inputs])
  return [vocab.decode([int(t) for t in x]) for x in ids]


@pytest.mark.parametrize("beam_size", [1, 4], ids=["greedy", "beam4"])
def test_decodes_equal_the_released_code(released, beam_size):
  model_dir, inputs, theirs = released
  mine = ours(model_dir, inputs, beam_size)
  same = sum(a == b for a, b in zip(mine, theirs[beam_size]))
  print(f"beam {beam_size}: {same} of {len(mine)} identical")
  if beam_size > 1:
    exhaustive = ours(model_dir, inputs, beam_size, "exhaustive")
    print(f"exhaustive search: {sum(a == b for a, b in zip(exhaustive, theirs[4]))} of "
          f"{len(mine)} identical to the released beam search")
  assert mine == theirs[beam_size]


def test_scores_equal_the_released_code(released):
  """--mode=score: each row's log-likelihood of its targets given its inputs, as the released
  score_in_predict_mode computes it (summed over the targets' non-padding tokens)."""
  model_dir, inputs, theirs = released
  config = config_lib.ModelConfig(d_model=32, d_ff=64, num_heads=4, d_kv=8,
                                  num_encoder_layers=2, num_decoder_layers=2, dropout_rate=0.0)
  settings = settings_lib.RunSettings(model_dir=model_dir, model=config, inputs_length=LENGTH,
                                      targets_length=LENGTH, batch_size=8)
  import tensorflow as tf
  mine = loop.score_examples(settings, [{"inputs": a, "targets": t} for a, t in
                                        zip(inputs, theirs["targets"])],
                             tf.train.latest_checkpoint(model_dir))
  mine = np.asarray([float(x) for x in mine])
  print("largest difference:", np.max(np.abs(mine - theirs["scores"])))
  np.testing.assert_allclose(mine, theirs["scores"], rtol=1e-6)


def test_the_released_code_reads_our_checkpoints(released, tmp_path):
  """The other way round: a model_dir our training wrote (two steps on SST-2, our own random
  initialisation) restored by the released predict path gives its greedy decodes and its scores
  the same as ours; every variable the released model has is in our checkpoint (its norms
  named "rms_norm" as this released version names them: ModelConfig.norm_name). A 2-step model's
  greedy decodes vary little with the input (3 distinct of 16 when written); the scores, which
  read every encoder and decoder weight for each input, are the sharp check."""
  import functools
  import tensorflow as tf
  from t5mtf.train import optimizers
  config = config_lib.ModelConfig(d_model=32, d_ff=64, num_heads=4, d_kv=8,
                                  num_encoder_layers=2, num_decoder_layers=2, dropout_rate=0.0,
                                  norm_name="rms_norm")
  settings = settings_lib.RunSettings(
      model_dir=str(tmp_path / "ours"), model=config, inputs_length=LENGTH, targets_length=8,
      batch_size=2, train_steps=2, mixture_or_task_name="glue_sst2_local",
      learning_rate_schedule=functools.partial(optimizers.constant_learning_rate,
                                               learning_rate=0.001))
  loop.train(settings)
  checkpoint = tf.train.latest_checkpoint(settings.model_dir)
  theirs_names = {n for n, _ in tf.train.list_variables(released[0])
                  if not n.endswith(("_slot_vc", "_slot_vr", "_slot_v")) and n != "global_step"}
  missing = theirs_names - {n for n, _ in tf.train.list_variables(checkpoint)}
  assert not missing, f"variables the released model has and our checkpoint lacks: {missing}"
  inputs, targets = released[1], released[2]["targets"]
  base = {"op": "decode", "gin_file": "models/t5.1.0.small.gin", "gin_bindings": PEER,
          "vocab_size": VOCAB, "beam_size": 1, "alpha": 0.6, "inputs": inputs.tolist(),
          "checkpoint": checkpoint}
  greedy, scores = [t5_env.ok(a) for a in t5_env.ask([
      {**base, "out_dir": str(tmp_path / "decode")},
      {**base, "out_dir": str(tmp_path / "score"), "targets": targets.tolist()}])]
  score_settings = settings_lib.RunSettings(model_dir=settings.model_dir, model=config,
                                            inputs_length=LENGTH, targets_length=LENGTH,
                                            batch_size=8)
  mine = loop.score_examples(score_settings, [{"inputs": a, "targets": t}
                                              for a, t in zip(inputs, targets)], checkpoint)
  decoded = ours(settings.model_dir, inputs, 1)
  print(f"greedy: {sum(a == b for a, b in zip(decoded, greedy))} of {len(greedy)} identical; "
        f"{len(set(greedy))} distinct, e.g. {greedy[0][:60]!r}")
  assert decoded == greedy
  np.testing.assert_allclose([float(x) for x in mine], scores, rtol=1e-6)
