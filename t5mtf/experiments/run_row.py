"""Runs one row with one seed (the runner starts one process per row, so rows share nothing):

    python -m t5mtf.experiments.run_row --gin_file=experiments/table02/04_lm_denoising.gin \
        --gin_file=scales/tiny.gin --seed=0 --output_dir=experiments_out/tiny/table02/...

Exit status 3 with ``skipped.json`` written: the row cannot run at this scale (the reason says why).
"""
import json
import os
import sys

from absl import app, flags

flags.DEFINE_multi_string("gin_file", [], "Experiment and scale gin files.")
flags.DEFINE_multi_string("gin_param", [], "Extra gin bindings.")
flags.DEFINE_integer("seed", 0, "Seed of data order, noise and initialisation.")
flags.DEFINE_string("output_dir", None, "The row's folder for this seed (results.json).")
flags.DEFINE_string("work_dir", None, "Where the row's checkpoints go (default: output_dir).")
flags.DEFINE_string("shared_dir", None, "Trainings shared between rows (see experiment.Trainer).")
FLAGS = flags.FLAGS

def main(argv):
  del argv
  import tensorflow as tf
  tf.get_logger().setLevel("ERROR")
  from t5mtf.experiments import experiment
  exp, scale = experiment.load(FLAGS.gin_file, FLAGS.gin_param)
  os.makedirs(FLAGS.output_dir, exist_ok=True)
  try:
    scale.corpus(exp.pretrain_corpus)
    experiment.run(exp, scale, FLAGS.seed, FLAGS.output_dir, FLAGS.work_dir, FLAGS.shared_dir)
  except (ValueError, NotImplementedError) as e:
    if isinstance(e, ValueError) and "has no stand-in" not in str(e) \
       and "has no model size" not in str(e):
      raise
    with open(os.path.join(FLAGS.output_dir, "skipped.json"), "w") as f:
      json.dump({"row": exp.row, "reason": str(e)}, f)
    print(f"skipped {exp.row!r}: {e}", file=sys.stderr)
    sys.exit(3)


if __name__ == "__main__":
  flags.mark_flag_as_required("output_dir")
  app.run(main)
