"""Checkpoints written by the released code itself (the original t5 venv trains one step and
leaves its model_dir, T5 v1.0 and T5.1.1, master weights in bfloat16 as released by default or in
float32) serve every mode of ours from the command line: score, predict, export, fine-tune start
and resume. The restored weights are the stored ones: scores from the bfloat16 model_dir equal
scores from a float32 copy of the same values that we write ourselves.
"""
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from t5mtf.train import checkpoints
from tests.peers import t5_env

pytestmark = pytest.mark.slow

VOCAB = 32128
PEER = ["d_model = 32", "d_ff = 64", "num_heads = 4", "d_kv = 8", "num_layers = 1",
        "dropout_rate = 0.0", 'utils.get_variable_dtype.activation_dtype = "float32"']
OURS = ["--gin_param=ModelConfig.d_model=32", "--gin_param=ModelConfig.d_ff=64",
        "--gin_param=ModelConfig.num_heads=4", "--gin_param=ModelConfig.d_kv=8",
        "--gin_param=ModelConfig.num_encoder_layers=1",
        "--gin_param=ModelConfig.num_decoder_layers=1",
        "--gin_param=RunSettings.inputs_length=16", "--gin_param=RunSettings.targets_length=8",
        "--gin_param=RunSettings.batch_size=2",
        "--gin_param=RunSettings.mixture_or_task_name='glue_sst2_local'"]
VERSIONS = {"v1.0": ("models/t5.1.0.small.gin", ["--gin_file=models/tiny.gin"]),
            "v1.1": ("models/t5.1.1.small.gin", ["--gin_file=models/t5.1.1/small.gin"])}


def released_model_dir(version, master_dtype, tmp_path):
  gin_file, _ = VERSIONS[version]
  rng = np.random.RandomState(0)
  job = {"op": "train_step", "out_dir": str(tmp_path / "peer"), "gin_file": gin_file,
         "gin_bindings": PEER + [f'utils.get_variable_dtype.master_dtype = "{master_dtype}"'],
         "vocab_size": VOCAB, "learning_rate": 0.01,
         "batch": {"inputs": rng.randint(2, 32000, (2, 16)).tolist(),
                   "targets": rng.randint(2, 32000, (2, 8)).tolist()}}
  return t5_env.ok(t5_env.ask([job])[0])["model_dir"]


def run(model_dir, version, *extra):
  cmd = [sys.executable, "-m", "t5mtf.main", f"--model_dir={model_dir}", *VERSIONS[version][1],
         *OURS, *extra]
  proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


@pytest.mark.parametrize("version,master_dtype", [("v1.0", "bfloat16"), ("v1.0", "float32"),
                                                  ("v1.1", "bfloat16"), ("v1.1", "float32")])
def test_released_checkpoints_serve_every_mode(version, master_dtype, tmp_path):
  released = released_model_dir(version, master_dtype, tmp_path)
  stored = dict(tf.train.list_variables(released))
  dtypes = tf.train.load_checkpoint(tf.train.latest_checkpoint(released)) \
      .get_variable_to_dtype_map()
  assert dtypes["encoder/block_000/layer_000/SelfAttention/q"] == tf.as_dtype(master_dtype)
  pairs = tmp_path / "pairs.tsv"
  pairs.write_text("sst2 sentence: a fine film.\tpositive\ncola sentence: it good.\tacceptable\n")
  lines = tmp_path / "in.txt"
  lines.write_text("sst2 sentence: a fine film.\ncola sentence: it good.\n")

  # Read-only modes on the released model_dir itself (nothing of it is changed).
  before = sorted(p.name for p in (tmp_path / "peer" / "model_dir").iterdir())
  run(released, version, "--mode=score", f"--input_file={pairs}",
      f"--output_file={tmp_path / 'scores.txt'}")
  run(released, version, "--mode=predict", f"--input_file={lines}",
      f"--output_file={tmp_path / 'out.txt'}")
  run(released, version, "--mode=export", f"--export_dir={tmp_path / 'export'}")
  assert sorted(p.name for p in (tmp_path / "peer" / "model_dir").iterdir()) == before
  assert len((tmp_path / "out.txt").read_text().splitlines()) == 2

  # The same values as float32 under our names, written by us: identical scores.
  from t5mtf import config_gin
  config = config_gin.settings_from_gin(
      [VERSIONS[version][1][0].split("=", 1)[1]],
      [a.split("=", 1)[1] for a in OURS], str(tmp_path / "x")).model
  arrays = {k: np.asarray(v, np.float32) for k, v in
            checkpoints.read_checkpoint(released, config).items()}
  checkpoints.write_checkpoint(arrays, tmp_path / "f32", step=1)
  run(tmp_path / "f32", version, "--mode=score", f"--input_file={pairs}",
      f"--output_file={tmp_path / 'scores_f32.txt'}")
  assert (tmp_path / "scores.txt").read_text() == (tmp_path / "scores_f32.txt").read_text()

  # Fine-tune start and resume.
  run(tmp_path / "fine", version, "--gin_param=RunSettings.train_steps=1",
      "--gin_param=RunSettings.save_checkpoints_steps=1",
      f"--gin_param=RunSettings.init_checkpoint='{released}'")
  q = "encoder/block_000/layer_000/SelfAttention/q"
  np.testing.assert_array_equal(
      tf.train.load_variable(str(tmp_path / "fine" / "model.ckpt-0"), q),
      np.asarray(tf.train.load_variable(released, q), np.float32))
  resumed = tmp_path / "resumed"
  shutil.copytree(released, resumed)
  run(resumed, version, "--gin_param=RunSettings.train_steps=2",
      "--gin_param=RunSettings.save_checkpoints_steps=1")
  assert checkpoints.latest_step(str(resumed)) == 2
  assert "global_step" in stored
