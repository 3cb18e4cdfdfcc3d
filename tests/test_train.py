"""The run loop end to end: smoke run, exact resumption after kill -9, NaN stop, bad input."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from google.protobuf import text_format
import tensorflow as tf

from t5mtf import config_gin
from t5mtf.train import checkpoints, feedback

TINY = ["--gin_file=models/tiny.gin",
        "--gin_param=RunSettings.mixture_or_task_name='local_span_corruption'",
        "--gin_param=RunSettings.inputs_length=32", "--gin_param=RunSettings.targets_length=8",
        "--gin_param=RunSettings.batch_size=4", "--gin_param=RunSettings.log_every_steps=5",
        "--gin_param=ModelConfig.d_model=32", "--gin_param=ModelConfig.d_ff=64",
        "--gin_param=ModelConfig.num_encoder_layers=1",
        "--gin_param=ModelConfig.num_decoder_layers=1"]


def main_cmd(model_dir, *extra):
  return [sys.executable, "-m", "t5mtf.main", f"--model_dir={model_dir}", *TINY, *extra]


def run_main(model_dir, *extra, check=True):
  return subprocess.run(main_cmd(model_dir, *extra), capture_output=True, text=True,
                        check=check, timeout=600)


@pytest.mark.slow
def test_resumed_run_after_kill_equals_uninterrupted(tmp_path):
  steps = ["--gin_param=RunSettings.train_steps=40",
           "--gin_param=RunSettings.save_checkpoints_steps=10"]
  straight = tmp_path / "straight"
  run_main(straight, *steps)
  killed = tmp_path / "killed"
  proc = subprocess.Popen(main_cmd(killed, *steps), stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  while time.time() < deadline:  # Kill between checkpoints, mid-way.
    curve = feedback.read_curve(str(killed))
    if curve and curve[-1][0] >= 24:
      break
    time.sleep(0.05)
  os.kill(proc.pid, signal.SIGKILL)
  proc.wait()
  assert checkpoints.latest_step(str(killed)) in (10, 20), "killed between checkpoints"
  run_main(killed, *steps)
  a, b = feedback.read_curve(str(straight)), feedback.read_curve(str(killed))
  assert [s for s, _ in a] == list(range(1, 41)) == [s for s, _ in b]
  np.testing.assert_allclose([l for _, l in b], [l for _, l in a], rtol=1e-6)


@pytest.mark.slow
def test_smoke_train_eval_predict_score(tmp_path):
  d = tmp_path / "run"
  run_main(d, "--gin_param=RunSettings.train_steps=4",
           "--gin_param=RunSettings.save_checkpoints_steps=2")
  assert checkpoints.latest_step(str(d)) == 4
  curve = feedback.read_curve(str(d))
  assert len(curve) == 4 and all(np.isfinite(l) for _, l in curve)
  inp = tmp_path / "in.txt"
  inp.write_text("summarize: the cat sat on the mat.\ntranslate English to German: Hi.\n")
  out = tmp_path / "out.txt"
  run_main(d, "--mode=predict", f"--input_file={inp}", f"--output_file={out}")
  assert len(out.read_text().splitlines()) == 2
  pairs = tmp_path / "pairs.tsv"
  pairs.write_text("the cat\tsat on the mat\nthe cat\tzq xv wj\n")
  scores = tmp_path / "scores.txt"
  run_main(d, "--mode=score", f"--input_file={pairs}", f"--output_file={scores}")
  values = [float(x) for x in scores.read_text().split()]
  assert len(values) == 2 and all(v < 0 for v in values)
  r = run_main(d, "--mode=eval", "--checkpoint_steps=all",
               "--gin_param=RunSettings.eval_tasks=['glue_sst2_local']",
               "--gin_param=RunSettings.eval_max_examples=8")
  results = json.loads((d / "eval_results.json").read_text())
  assert set(results["by_step"]) == {"0", "2", "4"}  # The saver also keeps step 0.
  assert "accuracy" in results["by_step"]["4"]["glue_sst2_local"]
  # model.gin beside the checkpoints: the converter needs no --gin_file, and the round trip
  # through Hugging Face's layout gives back the trained weights bit for bit.
  from t5mtf import convert
  convert.main([f"--from_checkpoint={d}", f"--to_hf={tmp_path / 'hf'}"])
  assert json.loads((tmp_path / "hf" / "config.json").read_text())["d_model"] == 32
  convert.main([f"--from_hf={tmp_path / 'hf'}", f"--to_checkpoint={tmp_path / 'back'}"])
  from t5mtf import config_gin
  config = config_gin.settings_from_gin([str(d / "model.gin")], [], str(tmp_path)).model
  assert (config.d_model, config.num_encoder_layers) == (32, 1)
  trained, back = (convert.read_checkpoint(str(p), config) for p in (d, tmp_path / "back"))
  assert trained.keys() == back.keys() and all(np.array_equal(trained[k], back[k])
                                               for k in trained)


def test_lost_checkpoint_state_is_refused_then_rebuilt_by_resume(tmp_path):
  """A 'checkpoint' state file that leads nowhere made TensorFlow see no checkpoint: training
  started over at step 0 and wrote over the run. Now it is refused until --resume_from_step
  names the checkpoint to continue from, which rebuilds the file from the ones on disk."""
  d = tmp_path / "run"
  run_main(d, "--gin_param=RunSettings.train_steps=4",
           "--gin_param=RunSettings.save_checkpoints_steps=2")
  (d / "checkpoint").write_text("junk{")
  kept = {p.name: p.read_bytes() for p in d.glob("model.ckpt-*")}
  r = run_main(d, "--gin_param=RunSettings.train_steps=6", check=False)
  assert r.returncode != 0 and "--resume_from_step=4" in r.stderr.splitlines()[-1]
  assert {p.name: p.read_bytes() for p in d.glob("model.ckpt-*")} == kept
  r = run_main(d, "--gin_param=RunSettings.train_steps=6",
               "--gin_param=RunSettings.save_checkpoints_steps=2", "--resume_from_step=4")
  assert "from step 4 to 6" in r.stderr
  state = tf.train.get_checkpoint_state(str(d))
  assert [p.rsplit("-", 1)[1] for p in state.all_model_checkpoint_paths] == ["0", "2", "4", "6"]
  assert checkpoints.latest_step(str(d)) == 6


def test_gin_typo_names_the_closest_binding():
  with pytest.raises(config_gin.GinConfigError, match="did you mean RunSettings.train_steps"):
    config_gin.settings_from_gin(["models/tiny.gin"], ["RunSettings.trian_steps=3"], "/tmp/x")
  with pytest.raises(config_gin.GinConfigError, match="gin file 'models/tinny.gin' not found"):
    config_gin.settings_from_gin(["models/tinny.gin"], [], "/tmp/x")


def test_required_value_says_how_to_set_it():
  with pytest.raises(config_gin.GinConfigError, match="init_checkpoint"):
    config_gin.settings_from_gin(["models/tiny.gin", "runs/finetune.gin"], [], "/tmp/x")


def test_mesh_that_does_not_divide_names_the_dimension():
  with pytest.raises(config_gin.GinConfigError, match="d_ff=256 does not divide over mesh axis model=3"):
    config_gin.settings_from_gin(["models/tiny.gin"], ["RunSettings.mesh_shape='model:3'"],
                                 "/tmp/x")


@pytest.mark.slow
def test_checkpoint_of_another_shape_is_refused_and_kept(tmp_path):
  d = tmp_path / "run"
  run_main(d, "--gin_param=RunSettings.train_steps=2",
           "--gin_param=RunSettings.save_checkpoints_steps=2")
  before = sorted(os.listdir(d))
  r = run_main(d, "--gin_param=RunSettings.train_steps=4", "--gin_param=ModelConfig.d_ff=96",
               check=False)
  assert r.returncode != 0
  assert "DenseReluDense/wi/kernel has shape [32, 64], the configured model expects [32, 96]" \
      in r.stderr
  assert sorted(os.listdir(d)) == before


@pytest.mark.slow
def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
  d = tmp_path / "run"
  r = run_main(d, "--gin_param=RunSettings.train_steps=6",
               "--gin_param=RunSettings.save_checkpoints_steps=2",
               "--gin_param=RunSettings.learning_rate_schedule='constant'",
               "--gin_param=constant_learning_rate.learning_rate=1e30", check=False)
  assert r.returncode != 0 and "error: loss is NaN at step" in r.stderr
  assert "Traceback" not in r.stderr
  latest = tf.train.latest_checkpoint(str(d))
  for name, _ in tf.train.list_variables(latest):
    value = tf.train.load_variable(latest, name)
    assert np.all(np.isfinite(value)), f"{name} in the kept checkpoint is not finite"


@pytest.mark.slow
def test_finetune_starts_from_the_pretrained_weights(tmp_path):
  pre, fine = tmp_path / "pre", tmp_path / "fine"
  run_main(pre, "--gin_param=RunSettings.train_steps=2",
           "--gin_param=RunSettings.save_checkpoints_steps=2")
  run_main(fine, "--gin_param=RunSettings.train_steps=1",
           "--gin_param=RunSettings.save_checkpoints_steps=1",
           f"--gin_param=RunSettings.init_checkpoint='{pre}'")
  for name in ("shared/embedding", "encoder/block_000/layer_000/SelfAttention/q"):
    np.testing.assert_array_equal(tf.train.load_variable(str(fine / "model.ckpt-0"), name),
                                  tf.train.load_variable(str(pre), name))


def test_unfreeze_schedule_top_layer_first():
  from t5mtf.train import trainable
  assert trainable.unfreeze_step("encoder/block_011/layer_000/SelfAttention/q", 12, 100) == 0
  assert trainable.unfreeze_step("decoder/block_000/layer_002/DenseReluDense/wi/kernel", 12,
                                 100) == 1100
  assert trainable.unfreeze_step("shared/embedding", 12, 100) == 0
  assert trainable.is_adapter_trainable("encoder/block_000/layer_001/adapter/wi")
  assert not trainable.is_adapter_trainable("encoder/block_000/layer_001/DenseReluDense/wi/kernel")


def _changed(before, after, name):
  return not np.array_equal(tf.train.load_variable(before, name),
                            tf.train.load_variable(after, name))


@pytest.mark.slow
def test_adapters_and_gradual_unfreezing_train_only_what_they_should(tmp_path):
  layers = ["--gin_param=ModelConfig.num_encoder_layers=2",
            "--gin_param=ModelConfig.num_decoder_layers=2"]
  pre = tmp_path / "pre"
  run_main(pre, *layers, "--gin_param=RunSettings.train_steps=1",
           "--gin_param=RunSettings.save_checkpoints_steps=1")
  adapters = tmp_path / "adapters"
  run_main(adapters, *layers, "--gin_param=RunSettings.train_steps=1",
           "--gin_param=RunSettings.save_checkpoints_steps=1",
           f"--gin_param=RunSettings.init_checkpoint='{pre}'",
           "--gin_param=RunSettings.trainable='adapters'", "--gin_param=ModelConfig.adapter_dim=8")
  a0, a1 = str(adapters / "model.ckpt-0"), str(adapters / "model.ckpt-1")
  assert _changed(a0, a1, "encoder/block_000/layer_001/adapter/wo")
  assert _changed(a0, a1, "encoder/block_000/layer_001/layer_norm/scale")
  assert not _changed(a0, a1, "encoder/block_000/layer_001/DenseReluDense/wi/kernel")
  assert not _changed(a0, a1, "shared/embedding")
  gradual = tmp_path / "gradual"
  run_main(gradual, *layers, "--gin_param=RunSettings.train_steps=1",
           "--gin_param=RunSettings.save_checkpoints_steps=1",
           f"--gin_param=RunSettings.init_checkpoint='{pre}'",
           "--gin_param=RunSettings.trainable='gradual_unfreezing'",
           "--gin_param=RunSettings.unfreeze_episode_steps=5")
  g0, g1 = str(gradual / "model.ckpt-0"), str(gradual / "model.ckpt-1")
  assert _changed(g0, g1, "encoder/block_001/layer_001/DenseReluDense/wi/kernel")
  assert _changed(g0, g1, "decoder/block_001/layer_000/SelfAttention/q")
  assert _changed(g0, g1, "shared/embedding")
  assert not _changed(g0, g1, "encoder/block_000/layer_001/DenseReluDense/wi/kernel")
  assert not _changed(g0, g1, "decoder/block_000/layer_000/SelfAttention/q")


@pytest.mark.slow
def test_restores_either_release_naming_scheme(tmp_path):
  """A checkpoint with T5 1.0 names (layer_norm) initialises a model that uses T5.1.1 names."""
  from t5mtf import convert
  from t5mtf.models import variables
  params = [a.split("=", 1)[1] for a in TINY if a.startswith("--gin_param")]
  source = config_gin.settings_from_gin(["models/tiny.gin"], params, str(tmp_path / "x")).model
  rng = np.random.RandomState(0)
  arrays = {n: rng.normal(size=s).astype(np.float32)
            for n, s in variables.expected_shapes(source).items()}
  convert.write_checkpoint(arrays, tmp_path / "v10", source)
  fine = tmp_path / "fine"
  run_main(fine, "--gin_param=RunSettings.train_steps=1",
           "--gin_param=RunSettings.save_checkpoints_steps=1",
           f"--gin_param=RunSettings.init_checkpoint='{tmp_path / 'v10'}'",
           "--gin_param=ModelConfig.norm_name='rms_norm'")
  step0 = str(fine / "model.ckpt-0")
  np.testing.assert_array_equal(
      tf.train.load_variable(step0, "encoder/block_000/layer_000/rms_norm/scale"),
      arrays["encoder/block_000/layer_000/layer_norm/scale"])
  np.testing.assert_array_equal(tf.train.load_variable(step0, "decoder/rms_norm/scale"),
                                arrays["decoder/final_layer_norm/scale"])


@pytest.mark.slow
def test_released_style_checkpoint_serves_predict_directly(tmp_path):
  """A checkpoint holding only model variables under the released names (no optimizer slots),
  as a released T5 checkpoint directory is, serves predict as its model_dir."""
  from t5mtf import convert
  from t5mtf.models import variables
  params = [a.split("=", 1)[1] for a in TINY if a.startswith("--gin_param")]
  config = config_gin.settings_from_gin(["models/tiny.gin"], params, str(tmp_path / "x")).model
  rng = np.random.RandomState(1)
  arrays = {n: rng.normal(0, 0.3, size=s).astype(np.float32)
            for n, s in variables.expected_shapes(config).items()}
  convert.write_checkpoint(arrays, tmp_path / "released", config, step=1000)
  inp = tmp_path / "in.txt"
  inp.write_text("translate English to German: Hello.\n")
  out = tmp_path / "out.txt"
  run_main(tmp_path / "released", "--mode=predict", f"--input_file={inp}",
           f"--output_file={out}")
  assert len(out.read_text().splitlines()) == 1


@pytest.mark.slow
def test_exported_saved_model_maps_strings_like_predict(tmp_path):
  d = tmp_path / "run"
  run_main(d, "--gin_param=RunSettings.train_steps=3",
           "--gin_param=RunSettings.save_checkpoints_steps=3")
  lines = ["translate English to German: Hello.", "summarize: the cat sat on the mat.",
           "cola sentence: it is good.", "sst2 sentence: a fine film."]
  inp, out = tmp_path / "in.txt", tmp_path / "out.txt"
  inp.write_text("\n".join(lines) + "\n")
  run_main(d, "--mode=predict", f"--input_file={inp}", f"--output_file={out}")
  r = run_main(d, "--mode=export", f"--export_dir={tmp_path / 'export'}")
  path = r.stdout.strip().split("exported to ")[-1]
  code = ("import sys, json, tensorflow as tf, tensorflow_text\n"
          "f = tf.saved_model.load(sys.argv[1]).signatures['serving_default']\n"
          "lines = json.loads(sys.argv[2])\n"
          "print(json.dumps([x.decode() for x in f(inputs=tf.constant(lines))['outputs'].numpy()]))")
  exported = subprocess.run([sys.executable, "-c", code, path, json.dumps(lines)],
                            capture_output=True, text=True, check=True).stdout
  assert json.loads(exported.strip().splitlines()[-1]) == out.read_text().splitlines()


def test_learning_rate_schedules_match_the_paper():
  """§3.1.2: 1/sqrt(max(n, 10^4)) for pre-training (0.01 during warm-up), 0.001 for
  fine-tuning; the slanted triangular one (Howard & Ruder) rises from peak / 32 to the peak in
  the first 10% of the steps, falls back to peak / 32 by the last and stays there."""
  from t5mtf.train import optimizers
  with tf.Graph().as_default(), tf.compat.v1.Session() as s:
    rsqrt = [s.run(optimizers.rsqrt_decay(tf.constant(n))) for n in (0, 5000, 10_000, 40_000)]
    const = s.run(optimizers.constant_learning_rate(tf.constant(7)))
    tri = [s.run(optimizers.triangular(tf.constant(n), total_steps=100, peak=0.01))
           for n in (0, 5, 10, 55, 100, 150)]
  np.testing.assert_allclose(rsqrt, [0.01, 0.01, 0.01, 0.005], rtol=1e-6)
  assert const == pytest.approx(0.001)
  np.testing.assert_allclose(tri, [0.0003125, 0.00515625, 0.01, 0.00515625, 0.0003125,
                                   0.0003125], rtol=1e-6)
  with pytest.raises(ValueError, match="no warm-up step"):
    optimizers.triangular(tf.constant(0), total_steps=9)


@pytest.mark.slow
def test_microbatches_take_the_same_step_as_the_whole_batch(tmp_path):
  """num_microbatches=4 accumulates gradients of 4 sequential quarters of the batch: the losses
  and the weights after two AdaFactor steps equal the whole-batch run's (dropout off, as masks
  are drawn per microbatch)."""
  common = ["--gin_param=RunSettings.train_steps=2", "--gin_param=RunSettings.log_every_steps=1",
            "--gin_param=RunSettings.save_checkpoints_steps=2",
            "--gin_param=ModelConfig.dropout_rate=0.0"]
  run_main(tmp_path / "whole", *common)
  run_main(tmp_path / "micro", *common, "--gin_param=RunSettings.num_microbatches=4")
  whole, micro = feedback.read_curve(tmp_path / "whole"), feedback.read_curve(tmp_path / "micro")
  assert [s for s, _ in whole] == [s for s, _ in micro] == [1, 2]
  np.testing.assert_allclose([l for _, l in micro], [l for _, l in whole], rtol=1e-5)
  for name in ("shared/embedding", "encoder/block_000/layer_001/DenseReluDense/wi/kernel",
               "decoder/block_000/layer_001/EncDecAttention/q"):
    np.testing.assert_allclose(tf.train.load_variable(str(tmp_path / "micro/model.ckpt-2"), name),
                               tf.train.load_variable(str(tmp_path / "whole/model.ckpt-2"), name),
                               atol=1e-5)
  # One microbatch at a time (the memory saving): TF's default would run ten side by side.
  graph = tf.compat.v1.GraphDef()
  text_format.Merge((tmp_path / "micro" / "graph.pbtxt").read_text(), graph)
  loops = [n.attr["parallel_iterations"].i for n in graph.node if "parallel_iterations" in n.attr]
  assert loops and set(loops) == {1}
  bad = run_main(tmp_path / "bad", *common, "--gin_param=RunSettings.num_microbatches=3",
                 check=False)
  assert bad.returncode != 0 and "num_microbatches=3 must divide the batch size 4" in bad.stderr


@pytest.mark.slow
def test_decoder_only_scores_condition_on_the_inputs(tmp_path):
  """An LM / prefix LM scores its targets after the inputs (one sequence, §3.2.1): the same
  target after two different inputs gets two different scores."""
  run_main(tmp_path, "--gin_param=ModelConfig.architecture='prefix_lm'",
           "--gin_param=RunSettings.train_steps=2",
           "--gin_param=RunSettings.save_checkpoints_steps=2")
  lines = tmp_path / "in.tsv"
  lines.write_text("summarize: the cat sat on the mat\tthe cat\nhello world, how are you\tthe cat\n"
                   "summarize: the cat sat on the mat\tthe cat\n")
  out = tmp_path / "scores.txt"
  run_main(tmp_path, "--gin_param=ModelConfig.architecture='prefix_lm'", "--mode=score",
           f"--input_file={lines}", f"--output_file={out}")
  a, b, again = [float(x) for x in out.read_text().split()]
  assert a < 0 and b < 0 and a == again and abs(a - b) > 1e-4
