"""Kills at random points (checkpoints every 2 steps, so many land inside a save) and a second
process on the same model_dir: the run always finishes with the uninterrupted run's weights, a
complete loss curve and no temporary leftovers; the second writer is refused, naming the
first."""
import glob
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from t5mtf.train import checkpoints, feedback
from tests.test_train import main_cmd

pytestmark = pytest.mark.slow

STEPS = ["--gin_param=RunSettings.train_steps=24",
         "--gin_param=RunSettings.save_checkpoints_steps=2",
         "--gin_param=RunSettings.log_every_steps=1"]


def weights(model_dir):
  path = tf.train.latest_checkpoint(str(model_dir))
  return {n: tf.train.load_variable(path, n) for n, _ in tf.train.list_variables(path)
          if "_slot_" not in n and n != "global_step"}


def leftovers(model_dir):
  return [p for p in glob.glob(os.path.join(str(model_dir), "*"))
          if "_temp" in os.path.basename(p) or ".tmp-" in os.path.basename(p)]


def test_random_kills_end_with_the_uninterrupted_weights(tmp_path):
  straight = tmp_path / "straight"
  subprocess.run(main_cmd(straight, *STEPS), check=True, capture_output=True, timeout=600)
  killed = tmp_path / "killed"
  rng = random.Random(7)
  kills = 0
  for _ in range(6):
    proc = subprocess.Popen(main_cmd(killed, *STEPS), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    start = feedback.read_curve(str(killed))
    start_step = start[-1][0] if start else 0
    wait_steps = rng.randint(1, 5)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
      curve = feedback.read_curve(str(killed))
      if curve and curve[-1][0] >= start_step + wait_steps:
        time.sleep(rng.random() * 0.3)  # Somewhere in the next step or its save.
        break
      time.sleep(0.01)
    if proc.poll() is None:
      os.kill(proc.pid, signal.SIGKILL)
      kills += 1
    proc.wait()
  done = subprocess.run(main_cmd(killed, *STEPS), capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-2000:]
  assert kills >= 3
  assert checkpoints.latest_step(str(killed)) == 24
  a, b = feedback.read_curve(str(straight)), feedback.read_curve(str(killed))
  assert [s for s, _ in b] == list(range(1, 25)), "the loss curve has every step"
  np.testing.assert_allclose([l for _, l in b], [l for _, l in a], rtol=1e-6)
  wa, wb = weights(straight), weights(killed)
  for name in wa:
    np.testing.assert_allclose(wb[name], wa[name], rtol=1e-5, atol=1e-7, err_msg=name)
  assert not leftovers(killed), leftovers(killed)
  print(f"{kills} kills; final weights equal the uninterrupted run's")


def test_a_second_writer_is_refused_and_a_killed_ones_lock_is_gone(tmp_path):
  d = tmp_path / "run"
  first = subprocess.Popen(main_cmd(d, "--gin_param=RunSettings.train_steps=100000",
                                    "--gin_param=RunSettings.save_checkpoints_steps=20"),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  while time.time() < deadline and checkpoints.latest_step(str(d)) < 20:
    time.sleep(0.05)
  second = subprocess.run(main_cmd(d, "--gin_param=RunSettings.train_steps=100000"),
                          capture_output=True, text=True, timeout=300)
  assert first.poll() is None, "the first run is still training"
  assert second.returncode != 0
  assert f"process {first.pid} on" in second.stderr and "Traceback" not in second.stderr
  os.kill(first.pid, signal.SIGKILL)  # Its lock dies with it: no stale lock to clear by hand.
  first.wait()
  step = checkpoints.latest_step(str(d))
  again = subprocess.run(main_cmd(d, f"--gin_param=RunSettings.train_steps={step + 2}"),
                         capture_output=True, text=True, timeout=300)
  assert again.returncode == 0, again.stderr[-2000:]
  assert checkpoints.latest_step(str(d)) == step + 2
  assert not leftovers(d), leftovers(d)


def _kill_at_random(cmd, seconds, rng):
  proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  time.sleep(rng.uniform(*seconds))
  if proc.poll() is None:
    os.kill(proc.pid, signal.SIGKILL)
  proc.wait()


def test_killed_predict_export_and_c4_leave_nothing_partial(tmp_path):
  """Each output is whole or absent after a kill, and the next run cleans up and finishes."""
  rng = random.Random(3)
  model = tmp_path / "model"
  subprocess.run(main_cmd(model, "--gin_param=RunSettings.train_steps=2",
                          "--gin_param=RunSettings.save_checkpoints_steps=2"),
                 check=True, capture_output=True, timeout=600)
  lines = tmp_path / "in.txt"
  lines.write_text("".join(f"translate English to German: line {i}.\n" for i in range(64)))
  out = tmp_path / "out.txt"
  predict = main_cmd(model, "--mode=predict", f"--input_file={lines}", f"--output_file={out}")
  export_dir = tmp_path / "export"
  export = main_cmd(model, "--mode=export", f"--export_dir={export_dir}")
  from tests.test_c4 import real_documents, write_wet
  write_wet(tmp_path / "docs.wet.gz", real_documents())
  c4_out = tmp_path / "c4"
  c4 = [sys.executable, "-m", "t5mtf.data.c4", f"--input={tmp_path / 'docs.wet.gz'}",
        f"--output_dir={c4_out}"]
  for cmd, seconds in ((predict, (4, 12)), (export, (4, 12)), (c4, (1, 3))):
    for _ in range(2):
      _kill_at_random(cmd, seconds, rng)
      assert not out.exists() or len(out.read_text().splitlines()) == 64
      assert not export_dir.exists() or all(
          (p / "saved_model.pb").exists() for p in export_dir.iterdir())
      assert not c4_out.exists() or list(c4_out.glob("c4-train.tfrecord-*"))
    if cmd is c4 and c4_out.exists():
      continue  # A run finished before its kill: C4 never overwrites a finished output.
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
  assert len(out.read_text().splitlines()) == 64
  assert list(export_dir.glob("*/saved_model.pb"))
  assert list(c4_out.glob("c4-train.tfrecord-*"))
  stale = [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]
  assert not stale, stale
