"""What a person watching a run sees: a log line every N steps, a stop on NaN, a progress bar."""
import json
import math
import os
import sys
import time

import tensorflow.compat.v1 as tf
from absl import logging


CURVE_FILE = "loss_curve.jsonl"


class NanLossError(ValueError):
  """The run diverged: reported in one line (the last good checkpoint kept), not a crash."""


def read_curve(model_dir):
  """[(step, loss)] with one entry per step: a resumed run's later lines replace a killed run's
  lines for the steps it redid."""
  path = os.path.join(model_dir, CURVE_FILE)
  if not os.path.exists(path):
    return []
  by_step = {}
  with open(path) as f:
    for line in f:
      try:
        row = json.loads(line)
      except ValueError:  # Blank, or the half-written last line of a killed run.
        continue
      by_step[row["step"]] = row["loss"]
  return sorted(by_step.items())


class ProgressHook(tf.train.SessionRunHook):
  """Logs step, loss, learning rate, tokens/s and ETA every ``log_every_steps``; appends each
  step's loss to ``model_dir/loss_curve.jsonl``; stops the run on a NaN loss, naming the step
  (the last checkpoint is kept)."""

  def __init__(self, settings, loss, learning_rate):
    self.settings = settings
    self.loss, self.lr = loss, learning_rate
    self._t0 = None
    self._file = None

  def begin(self):
    self.step_tensor = tf.train.get_or_create_global_step()
    self._file = open(os.path.join(self.settings.model_dir, CURVE_FILE), "a")

  def end(self, session):
    self._file.close()
    report_trimmed(self.settings)

  def after_create_session(self, session, coord):
    self._t0, self._step0 = time.time(), session.run(self.step_tensor)

  def before_run(self, run_context):
    return tf.train.SessionRunArgs([self.step_tensor, self.loss, self.lr])

  def after_run(self, run_context, run_values):
    step, loss, lr = run_values.results
    step += 1  # The value before this step's increment.
    if not math.isfinite(loss):
      raise NanLossError(f"loss is {loss} at step {step}; stopping. The last good checkpoint "
                         f"in {self.settings.model_dir} is kept.")
    self._file.write(json.dumps({"step": int(step), "loss": float(loss)}) + "\n")
    self._file.flush()
    s = self.settings
    if step % s.log_every_steps == 0 or step == s.train_steps:
      elapsed = time.time() - self._t0
      done = step - self._step0
      rate = done / max(elapsed, 1e-9)
      tokens = rate * s.batch_size * (s.inputs_length + s.targets_length)
      eta = (s.train_steps - step) / max(rate, 1e-9)
      logging.info("step %d/%d  loss %.4f  lr %.2e  %.0f tokens/s  ETA %s", step,
                   s.train_steps, loss, lr, tokens, _hms(eta))


def report_trimmed(settings):
  """Says how many examples the input pipeline cut to fit the sequence lengths (none is cut
  silently): one warning line per task and feature."""
  from t5mtf.data import preprocessors
  for key, n in sorted(preprocessors.trimmed_report().items()):
    feature = key.rsplit("/", 1)[1]
    length = settings.sequence_length.get(feature, "?")
    logging.warning("%d examples of %s were longer than %s tokens and were trimmed (raise "
                    "RunSettings.%s_length to keep them whole)", n, key, length, feature)


def _hms(seconds):
  seconds = int(seconds)
  return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def progress(iterable, total, label):
  """A one-line progress bar on stderr for eval, predict and score."""
  start = time.time()
  for i, item in enumerate(iterable, 1):
    yield item
    if sys.stderr.isatty() or i == total or i % max(1, total // 10) == 0:
      frac = i / max(total, 1)
      bar = "#" * int(30 * frac)
      sys.stderr.write(f"\r{label} [{bar:<30}] {i}/{total} {time.time() - start:.0f}s")
      if i == total:
        sys.stderr.write("\n")
      sys.stderr.flush()
