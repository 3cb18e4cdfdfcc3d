"""One training step against the released code path itself: the original t5 venv runs
mesh_tensorflow.transformer.utils.tpu_estimator_model_fn on a model built from t5's own gin files
(T5 v1.0 and T5.1.1, AdaFactor as released, z-loss 1e-4 and its loss denominator), starting from
its own random weights; we restore those weights, run our model_fn's training step on the same
batch, and compare the loss and every weight and AdaFactor slot after the step (1e-6).

Tiny dimensions and no dropout (the two programs draw different dropout masks), float32
activations and master weights; one unpacked batch with padding, one packed batch.
"""
import functools

import mesh_tensorflow as mtf
import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from tensorflow_estimator.python.estimator.model_fn import ModeKeys

from t5mtf.models import config as config_lib
from t5mtf.train import model_fn as model_fn_lib, optimizers, settings as settings_lib
from tests import model_helpers as mh
from tests.peers import t5_env

pytestmark = pytest.mark.slow

DIMS = dict(d_model=32, d_ff=64, num_heads=4, d_kv=8, num_encoder_layers=2,
            num_decoder_layers=2, vocab_size=256, dropout_rate=0.0, norm_name="rms_norm")
PEER_BINDINGS = ["d_model = 32", "d_ff = 64", "num_heads = 4", "d_kv = 8", "num_layers = 2",
                 "dropout_rate = 0.0", 'utils.get_variable_dtype.activation_dtype = "float32"',
                 'utils.get_variable_dtype.master_dtype = "float32"']
VERSIONS = {
    "v1.0": ("models/t5.1.0.small.gin", {}),
    "v1.1": ("models/t5.1.1.small.gin", {"ffn_activation": "gated-gelu",
                                         "tie_embeddings": False}),
    # Table 2's language model: mesh-tensorflow's Unitransformer (model_type "lm") on targets.
    "lm": ("models/t5.1.0.small.gin", {"architecture": "lm", "num_encoder_layers": 0}),
    # Its prefix LM: model_type "delimited_lm" with input_full_attention, on inputs + targets,
    # scored on the targets part as ours is (loss_on_targets_only; see the README's deviations).
    "prefix_lm": ("models/t5.1.0.small.gin", {"architecture": "prefix_lm",
                                              "num_encoder_layers": 0}),
}
PEER_TYPE = {"lm": ("lm", []), "prefix_lm": ("delimited_lm", [
    "Unitransformer.input_full_attention = True", "Unitransformer.loss_on_targets_only = True"])}


def our_name(name, version):
  """The released variable name -> ours: a Unitransformer's "transformer/" scope is our
  decoder-only model's "decoder/", its embedding our "shared/embedding"."""
  if version not in PEER_TYPE:
    return name
  if name.startswith("transformer/embedding"):
    return "shared/" + name[len("transformer/"):]
  return "decoder/" + name[len("transformer/"):]
LEARNING_RATE = 0.01


def batch(packed):
  f = mh.random_features(batch=4, inputs_length=16, targets_length=8, vocab=256, seed=3,
                         packed=packed)
  if not packed:  # Padding at the ends, so that the loss denominator matters.
    f["targets"][1, 5:] = 0
    f["targets"][3, 2:] = 0
    f["targets_segment_ids"] = (f["targets"] > 0).astype(np.int32)
  return f


def with_eos(f):
  """Each segment's inputs and targets end in EOS (id 1), as a task's do (the released prefix LM
  finds the inputs part by counting EOS)."""
  f = {k: v.copy() for k, v in f.items()}
  for k in ("inputs", "targets"):
    segments = f.get(k + "_segment_ids", (f[k] > 0).astype(np.int32))
    for row, seg in zip(f[k], segments):
      for s in set(seg.tolist()) - {0}:
        row[np.where(seg == s)[0][-1]] = 1
  return f


def joined(f):
  """Our decoder-only features of {inputs, targets} (packed or not): each segment's inputs +
  targets in turn, prefix_mask on its inputs part (what data/input_fn.to_decoder_only makes
  before packing; the released _dynamic_text2self joins the same)."""
  n = f["inputs"].shape[1] + f["targets"].shape[1]
  out = {k: np.zeros((len(f["inputs"]), n), np.int32) for k in
         ("targets", "prefix_mask", "targets_segment_ids", "targets_positions")}
  for b in range(len(f["inputs"])):
    segments = {k: f.get(k + "_segment_ids", (f[k] > 0).astype(np.int32))[b]
                for k in ("inputs", "targets")}
    at = 0
    for s in sorted(set(segments["inputs"].tolist()) - {0}):
      part = {k: f[k][b][segments[k] == s] for k in ("inputs", "targets")}
      row = np.concatenate([part["inputs"], part["targets"]])
      end = at + len(row)
      out["targets"][b, at:end] = row
      out["prefix_mask"][b, at:at + len(part["inputs"])] = 1
      out["targets_segment_ids"][b, at:end] = s
      out["targets_positions"][b, at:end] = np.arange(len(row))
      at = end
  return out


def peer_features(f, packed, keys=("inputs", "targets")):
  out = {k: f[k] for k in keys}
  if packed:
    for k in keys:
      out[k + "_segmentation"] = f[k + "_segment_ids"]
      out[k + "_position"] = f[k + "_positions"]
  return {k: v.tolist() for k, v in out.items()}


def our_step(config, features, init_checkpoint, tmp_path, rename=lambda name: name, steps=1):
  """(losses, {released name: value after the steps}) of our training steps from the released
  initial weights (``rename``: a released name -> ours)."""
  settings = settings_lib.RunSettings(
      model_dir=str(tmp_path / "ours"), model=config, batch_size=4, inputs_length=16,
      targets_length=8, learning_rate_schedule=functools.partial(
          optimizers.constant_learning_rate, learning_rate=LEARNING_RATE))
  with tf.Graph().as_default():
    tf.train.get_or_create_global_step()
    tf_features = {k: tf.constant(v, tf.int32) for k, v in features.items()}
    spec = model_fn_lib.model_fn_builder(settings)(tf_features, None, ModeKeys.TRAIN)
    restore = [h for h in spec.training_chief_hooks if isinstance(h, mtf.MtfRestoreHook)][0]
    ours = {v.op.name: v for v in tf.global_variables()}
    variables = {name: ours[rename(name)] for name, _ in tf.train.list_variables(init_checkpoint)
                 if rename(name) in ours}
    tf.train.init_from_checkpoint(init_checkpoint, variables)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(restore._lowering.copy_masters_to_slices())
      losses = [float(sess.run([spec.train_op, spec.loss])[1]) for _ in range(steps)]
      sess.run(restore._lowering.copy_slices_to_masters())
      return losses, {name: sess.run(v) for name, v in variables.items()}


@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_one_step_equals_the_released_code(version, packed, tmp_path):
  gin_file, overrides = VERSIONS[version]
  features = batch(packed)
  keys = ("targets",) if version == "lm" else ("inputs", "targets")
  if version == "prefix_lm":  # Unpacked: rows without padding, see the README on padding.
    features = with_eos(features if packed else mh.random_features(
        batch=4, inputs_length=16, targets_length=8, vocab=256, seed=3, packed=False))
  model_type, bindings = PEER_TYPE.get(version, ("bitransformer", []))
  job = {"op": "train_step", "out_dir": str(tmp_path / "peer"), "gin_file": gin_file,
         "gin_bindings": PEER_BINDINGS + bindings, "vocab_size": DIMS["vocab_size"],
         "batch": peer_features(features, packed, keys), "learning_rate": LEARNING_RATE,
         "model_type": model_type}
  theirs = t5_env.ok(t5_env.ask([job])[0])
  config = config_lib.ModelConfig(**{**DIMS, **overrides})
  if version == "lm":
    features = {k: v for k, v in features.items() if k.startswith("targets")}
  elif version == "prefix_lm":
    features = joined(features)
  (loss,), ours = our_step(config, features, theirs["init"], tmp_path,
                           functools.partial(our_name, version=version))
  after = np.load(theirs["after"])
  assert loss == pytest.approx(theirs["loss"], abs=1e-6)
  missing = sorted(set(after.files) - set(ours))
  assert not missing, f"variables only the original has: {missing}"
  worst = max((float(np.max(np.abs(ours[k] - after[k]))), k) for k in after.files)
  print(f"{version} {'packed' if packed else 'padded'}: loss {loss:.7f} vs {theirs['loss']:.7f};"
        f" {len(after.files)} variables, largest difference {worst[0]:.2e} ({worst[1]})")
  assert worst[0] <= 1e-6, worst


@pytest.mark.parametrize("version,packed", [("v1.0", True), ("v1.1", False)],
                         ids=["v1.0-packed", "v1.1-padded"])
def test_four_steps_equal_the_released_code(version, packed, tmp_path):
  """Four steps on one batch: AdaFactor's decay rate 1 - (n+1)^-0.8 and its slots move with the
  step, and the loss falls; each step's loss and every weight after the last match."""
  gin_file, overrides = VERSIONS[version]
  features = batch(packed)
  job = {"op": "train_step", "out_dir": str(tmp_path / "peer"), "gin_file": gin_file,
         "gin_bindings": PEER_BINDINGS, "vocab_size": DIMS["vocab_size"],
         "batch": peer_features(features, packed), "learning_rate": LEARNING_RATE, "steps": 4}
  theirs = t5_env.ok(t5_env.ask([job])[0])
  config = config_lib.ModelConfig(**{**DIMS, **overrides})
  losses, ours = our_step(config, features, theirs["init"], tmp_path, steps=4)
  after = np.load(theirs["after"])
  np.testing.assert_allclose(losses, theirs["losses"], atol=1e-6)
  assert losses[-1] < losses[0]
  # Relative: each step's float32 rounding carries into the next (embedding values reach ~4).
  worst = max((float(np.max(np.abs(ours[k] - after[k]) / np.maximum(1.0, np.abs(after[k])))), k)
              for k in after.files)
  print(f"{version} 4 steps: losses {losses} vs {theirs['losses']}; largest difference "
        f"{worst[0]:.2e} of max(1, |weight|) ({worst[1]}, largest weight "
        f"{float(np.max(np.abs(after[worst[1]]))):.2f})")
  assert worst[0] <= 1e-6, worst
