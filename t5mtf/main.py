"""``python -m t5mtf.main``: pre-train, fine-tune, evaluate, predict, score, export, info.

With no flags it runs the embedded default (``t5mtf.experiments.default_run``): offline, a few
minutes on 2 CPU cores. Otherwise gin files and bindings configure ``RunSettings``::

    python -m t5mtf.main --model_dir=runs/base --gin_file=models/base.gin \
        --gin_file=runs/pretrain.gin --gin_param="RunSettings.train_steps=1000"
"""
import importlib
import os
import sys

from absl import app, flags, logging
from t5mtf import cli  # noqa: E402

flags.DEFINE_string("model_dir", None, "Where checkpoints, summaries and results go.")
flags.DEFINE_multi_string("gin_file", [], "Gin files; also looked up under gin/.")
flags.DEFINE_multi_string("gin_param", [], "Gin bindings, e.g. RunSettings.train_steps=100.")
flags.DEFINE_multi_string("module_import", [], "Modules to import (e.g. to register tasks).")
flags.DEFINE_enum("mode", None, ["train", "finetune", "eval", "predict", "score", "export",
                                 "info"], "What to do.")
flags.DEFINE_string("checkpoint_steps", "latest", "For eval/predict/score: a step, a list "
                    "(1000,2000), 'all' or 'latest'.")
flags.DEFINE_string("input_file", None, "predict: one input per line; score: input<TAB>target.")
flags.DEFINE_string("output_file", None, "predict/score output, one line per input line.")
flags.DEFINE_string("export_dir", None, "export: where the SavedModel goes.")
flags.DEFINE_integer("resume_from_step", None, "train: continue from this earlier checkpoint "
                     "(e.g. when the latest is damaged); later checkpoints stay on disk.")
flags.DEFINE_string("tpu", None, "Cloud TPU name (TPUEstimator + SimdMeshImpl).")
flags.DEFINE_string("tpu_zone", None, "Cloud TPU zone.")
flags.DEFINE_string("gcp_project", None, "Cloud project of the TPU.")
flags.DEFINE_string("worker_hosts", None, "A TensorFlow cluster, host:port per task (or set "
                    "TF_CONFIG); task 0 runs the job, the others serve their devices.")
flags.DEFINE_integer("task_index", None, "This process's task in --worker_hosts.")
flags.DEFINE_float("worker_wait_secs", 60.0, "How long the chief waits for the other tasks.")
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  _quiet_tensorflow()
  for module in FLAGS.module_import:
    importlib.import_module(module)
  from t5mtf.train import cluster as cluster_lib
  cluster = cluster_lib.from_flags(FLAGS.worker_hosts, FLAGS.task_index)
  if cluster and not cluster.is_chief:
    cluster_lib.serve(cluster)
    return
  if not FLAGS.mode and not FLAGS.gin_file and not FLAGS.gin_param:
    if cluster:
      raise SystemExit("error: the chief (task 0) needs a job: --mode, --gin_file/--gin_param")
    from t5mtf.experiments import default_run
    default_run.run(FLAGS.model_dir or os.path.join(os.getcwd(), "t5mtf_run"))
    return
  from t5mtf import config_gin
  try:
    settings = config_gin.settings_from_gin(FLAGS.gin_file, FLAGS.gin_param, FLAGS.model_dir,
                                            needs_model_dir=FLAGS.mode != "info")
  except config_gin.GinConfigError as e:
    raise SystemExit(f"error: {e}") from None
  settings.tpu, settings.tpu_zone = FLAGS.tpu or settings.tpu, FLAGS.tpu_zone or settings.tpu_zone
  settings.gcp_project = FLAGS.gcp_project or settings.gcp_project
  mode = FLAGS.mode or "train"
  if cluster and settings.tpu:
    raise SystemExit("error: --tpu and --worker_hosts exclude each other: a TPU's hosts are "
                     "found by TPUEstimator itself")
  if cluster and mode not in ("info", "export"):  # export: a single-host SavedModel.
    connection = cluster_lib.connect(cluster, FLAGS.worker_wait_secs)
    settings = cluster_lib.settings_for(settings, connection)
    logging.info("cluster of %d tasks; mesh on %s", len(cluster.hosts), settings.mesh_devices)
    with cluster_lib.Watchdog(cluster, settings.model_dir):
      _run(mode, settings)
  else:
    _run(mode, settings)


def _run(mode, settings):
  from t5mtf.train import loop
  if mode == "info":
    for k, v in loop.info(settings).items():
      print(f"{k}: {v:,}" if isinstance(v, int) else f"{k}: {v}")
  elif mode in ("train", "finetune"):
    if FLAGS.resume_from_step is not None:
      from t5mtf.train import checkpoints
      step = checkpoints.roll_back_before(settings.model_dir, FLAGS.resume_from_step + 1)
      if step != FLAGS.resume_from_step:
        raise SystemExit(f"error: --resume_from_step={FLAGS.resume_from_step}: no checkpoint "
                         f"of that step in {settings.model_dir}")
    loop.train(settings)
  elif mode == "eval":
    out = loop.evaluate(settings, FLAGS.checkpoint_steps)
    print(f"best checkpoint per task: {out['best']}")
  elif mode in ("predict", "score"):
    if not FLAGS.input_file or not FLAGS.output_file:
      raise SystemExit(f"--mode={mode} needs --input_file and --output_file")
    if not os.path.isfile(FLAGS.input_file):
      raise SystemExit(f"error: --input_file={FLAGS.input_file} is not a file")
    cli.check_output_file("--output_file", FLAGS.output_file)
    getattr(loop, mode)(settings, FLAGS.input_file, FLAGS.output_file, FLAGS.checkpoint_steps)
    print(f"wrote {FLAGS.output_file}")
  elif mode == "export":
    if not FLAGS.export_dir:
      raise SystemExit("--mode=export needs --export_dir")
    if os.path.exists(FLAGS.export_dir) and not os.path.isdir(FLAGS.export_dir):
      raise SystemExit(f"error: --export_dir={FLAGS.export_dir} is a file, not a folder")
    print(f"exported to {loop.export(settings, FLAGS.export_dir)}")


def _quiet_tensorflow():
  import tensorflow as tf
  tf.get_logger().setLevel("ERROR")
  logging.set_verbosity(logging.INFO)


def run():
  app.run(cli.guarded(main))


if __name__ == "__main__":
  run()
