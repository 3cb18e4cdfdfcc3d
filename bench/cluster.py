"""Training steps/s on one process vs a TensorFlow cluster of two processes, same total cores.

    python bench/cluster.py [--d_model=256 --layers=4 --batch=8 --length=128 --steps=10]

Three runs of the same model (mesh ``model:2``) and step, each timed over ``--steps`` steps
after warm-up, in processes pinned with ``taskset`` so that every run has the same 2 cores:
  one      one process on cores 0-1, a direct session (the mesh's 2 slices on its CPU)
  grpc     the same, through its own gRPC server (the cluster path's session, no network)
  cluster  the chief on core 0 and a worker on core 1: each slice on its own process
"one / grpc" is the gRPC master's overhead; "one / cluster" what splitting over processes
costs or gains when the transport is loopback and each process has half the cores.
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common  # noqa: E402


def settings(args, model_dir, target="", devices=()):
  from t5mtf.models import config as config_lib
  from t5mtf.train import settings as settings_lib
  model = config_lib.ModelConfig(d_model=args.d_model, d_ff=4 * args.d_model, num_heads=8,
                                 d_kv=args.d_model // 8, num_encoder_layers=args.layers,
                                 num_decoder_layers=args.layers, dropout_rate=0.0)
  return settings_lib.RunSettings(
      model_dir=model_dir, mixture_or_task_name="local_span_corruption", model=model,
      inputs_length=args.length, targets_length=args.length // 4, batch_size=args.batch,
      mesh_shape="model:2", mesh_devices=tuple(devices), session_target=target)


def time_steps(args, s):
  """Median seconds per training step of ``s`` (graph built here, session at s's target)."""
  import mesh_tensorflow as mtf
  import numpy as np
  import tensorflow.compat.v1 as tf
  from t5mtf.train import loop, model_fn as model_fn_lib
  with tf.Graph().as_default():
    iterator = tf.data.make_initializable_iterator(loop._train_input_fn(s, 0)(None))
    spec = model_fn_lib.model_fn_builder(s)(iterator.get_next(), None, "train")
    restore = [h for h in spec.training_chief_hooks if isinstance(h, mtf.MtfRestoreHook)]
    creator = tf.train.ChiefSessionCreator(
        master=s.session_target, config=tf.ConfigProto(isolate_session_state=True))
    with tf.train.MonitoredSession(creator, hooks=restore) as sess:
      sess.run(iterator.initializer)
      for _ in range(3):
        sess.run(spec.train_op)
      times = []
      for _ in range(args.steps):
        start = time.perf_counter()
        sess.run(spec.train_op)
        times.append(time.perf_counter() - start)
  return float(np.median(times))


def role(args):
  """One timed run inside this (pinned) process; prints seconds per step."""
  import tempfile
  from t5mtf.train import cluster as cluster_lib
  model_dir = tempfile.mkdtemp()
  if args.role == "one":
    s = settings(args, model_dir)
  else:
    hosts = args.worker_hosts.split(",")
    c = cluster_lib.Cluster(hosts, 0)
    connection = cluster_lib.connect(c, 60)
    s = cluster_lib.settings_for(settings(args, model_dir), connection)
    if args.role == "grpc":  # Both slices on the chief: only the session path differs.
      s = settings(args, model_dir, connection.target, [s.mesh_devices[0]] * 2)
  print(f"seconds_per_step {time_steps(args, s):.6f}", flush=True)


def run(cores, *extra):
  cmd = ["taskset", "-c", cores, sys.executable, os.path.abspath(__file__), *sys.argv[1:],
         *extra]
  out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
  lines = [l for l in out.stdout.splitlines() if l.startswith("seconds_per_step")]
  if out.returncode or not lines:
    raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
  return float(lines[-1].split()[1])


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--d_model", type=int, default=256)
  p.add_argument("--layers", type=int, default=4)
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--length", type=int, default=128)
  p.add_argument("--steps", type=int, default=10)
  p.add_argument("--role", choices=["one", "grpc", "cluster"])
  p.add_argument("--worker_hosts")
  args = p.parse_args()
  if args.role:
    return role(args)
  one = run("0,1", "--role=one")
  from t5mtf.train import cluster as cluster_lib
  hosts = [f"127.0.0.1:{port}" for port in cluster_lib.free_local_ports(2)]
  flag = f"--worker_hosts={','.join(hosts)}"
  grpc = run("0,1", "--role=grpc", f"--worker_hosts={hosts[0]}")
  worker = subprocess.Popen(["taskset", "-c", "1", sys.executable, "-m", "t5mtf.main", flag,
                             "--task_index=1"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
  try:
    cluster = run("0", "--role=cluster", flag)
  finally:
    worker.kill()
    worker.wait()
  cpu = common.cpu_model()
  print(f"CPU: {cpu}; model d_model={args.d_model} layers={args.layers}+{args.layers}, "
        f"batch {args.batch} x {args.length}, mesh model:2, 2 cores in every run")
  for name, t in (("one process, direct session", one),
                  ("one process, through its gRPC server", grpc),
                  ("two processes (chief + worker), one core each", cluster)):
    print(f"{name:48s} {1 / t:7.2f} steps/s  ({t * 1000:.0f} ms/step)")
  print(f"gRPC session overhead: {grpc / one:.3f}x the direct step time")
  print(f"two processes vs one: {one / cluster:.2f}x the steps/s")


if __name__ == "__main__":
  main()
