"""Training and decoding over a TensorFlow cluster of worker processes on loopback: the same
losses, weights and tokens as one process; the mesh really placed on the other processes; a
worker that dies stops the chief, naming it, and the same command then resumes exactly."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import mesh_tensorflow as mtf
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from t5mtf.train import checkpoints, cluster as cluster_lib, feedback
from tests.test_train import TINY, main_cmd

STEPS = ["--gin_param=RunSettings.train_steps=6", "--gin_param=RunSettings.log_every_steps=1"]


free_ports = cluster_lib.free_local_ports


class Workers:
  """Tasks 1..n-1 of a loopback cluster, each a ``python -m t5mtf.main`` process."""

  def __init__(self, n):
    self.hosts = [f"127.0.0.1:{p}" for p in free_ports(n)]
    self.procs = {}

  @property
  def flag(self):
    return f"--worker_hosts={','.join(self.hosts)}"

  def start(self, k):
    self.procs[k] = subprocess.Popen(
        [sys.executable, "-m", "t5mtf.main", self.flag, f"--task_index={k}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

  def start_all(self):
    for k in range(1, len(self.hosts)):
      self.start(k)

  def kill(self, k):
    self.procs[k].send_signal(signal.SIGKILL)
    self.procs[k].wait(timeout=30)

  def stop(self):
    for p in self.procs.values():
      if p.poll() is None:
        p.kill()
      p.wait(timeout=30)


@pytest.fixture
def workers():
  made = []

  def make(n):
    made.append(Workers(n))
    made[-1].start_all()
    return made[-1]
  yield make
  for w in made:
    w.stop()


def chief(model_dir, w, *extra, timeout=300):
  return subprocess.run(main_cmd(model_dir, w.flag, "--task_index=0", *extra),
                        capture_output=True, text=True, timeout=timeout)


def weights(model_dir):
  path = tf.train.latest_checkpoint(str(model_dir))
  return {n: tf.train.load_variable(path, n) for n, _ in tf.train.list_variables(path)}


def assert_same_run(a, b):
  ca, cb = feedback.read_curve(str(a)), feedback.read_curve(str(b))
  assert [s for s, _ in ca] == [s for s, _ in cb] and len(ca) >= 6
  np.testing.assert_allclose([l for _, l in cb], [l for _, l in ca], atol=1e-5)
  wa, wb = weights(a), weights(b)
  assert set(wa) == set(wb)
  for name in wa:
    # 6 AdaFactor steps of float32 rounding apart (slices sum partial results in another
    # order): one embedding entry in a million was seen 1.3e-5 away, and 3.0e-5 on batch:2
    # once the two slices drew their own dropout masks (before, they repeated one mask).
    np.testing.assert_allclose(wb[name], wa[name], atol=5e-5, err_msg=name)


# -- the cluster from flags, its devices --------------------------------------------------------


def test_cluster_from_flags_and_tf_config():
  c = cluster_lib.from_flags("a:1,b:2,c:3", 2)
  assert c.hosts == ["a:1", "b:2", "c:3"] and c.task_index == 2 and not c.is_chief
  assert cluster_lib.from_flags(None, None, environ={}) is None
  env = {"TF_CONFIG": json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:2", "c:3"]},
                                  "task": {"type": "worker", "index": 1}})}
  c = cluster_lib.from_flags(None, None, environ=env)
  assert c.hosts == ["a:1", "b:2", "c:3"] and c.task_index == 2  # The chief is task 0.
  env = {"TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1", "b:2"]},
                                  "task": {"type": "worker", "index": 0}})}
  assert cluster_lib.from_flags(None, None, environ=env).is_chief


@pytest.mark.parametrize("hosts, index, message", [
    ("a:1,b", 0, "'b' is not host:port"),
    ("a:1,a:1", 0, "names a host:port twice"),
    ("a:1,b:2", 2, "--task_index=2 is not a task of the 2"),
    (None, 1, "--task_index needs --worker_hosts")])
def test_bad_cluster_flags_are_named(hosts, index, message):
  with pytest.raises(ValueError, match=message):
    cluster_lib.from_flags(hosts, index, environ={})


def test_tf_config_with_parameter_servers_is_refused():
  env = {"TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1"], "ps": ["p:1"]}})}
  with pytest.raises(ValueError, match=r"job\(s\) \['ps'\] are not used here"):
    cluster_lib.from_flags(None, None, environ=env)


def test_default_devices_spread_the_mesh_gpus_first():
  cpu = [f"/job:worker/replica:0/task:{k}/device:CPU:0" for k in range(2)]
  gpu = [f"/job:worker/replica:0/task:1/device:GPU:{i}" for i in range(2)]
  assert cluster_lib.default_devices(cpu, 2, 2) == cpu
  assert cluster_lib.default_devices(cpu, 4, 2) == [cpu[0], cpu[0], cpu[1], cpu[1]]
  assert cluster_lib.default_devices(cpu + gpu, 3, 2) == [cpu[0]] + gpu  # Task 1: its GPUs.
  with pytest.raises(ValueError, match="cannot share evenly"):
    cluster_lib.default_devices(cpu + gpu, 4, 2)


def test_unreachable_worker_is_named_after_a_bounded_wait():
  port, = free_ports(1)
  c = cluster_lib.Cluster(["127.0.0.1:1", f"127.0.0.1:{port}"], 0)
  started = time.time()
  with pytest.raises(ValueError, match=rf"worker task 1 \(127.0.0.1:{port}\) not reachable "
                                       r"after 1 s: start it with"):
    cluster_lib.wait_for_workers(c, 1.0)
  assert time.time() - started < 10


def test_a_worker_that_stops_answering_ends_the_chief_naming_it(capsys):
  port, = free_ports(1)
  listener = socket.socket()
  listener.bind(("127.0.0.1", port))
  listener.listen()
  exits = []
  c = cluster_lib.Cluster(["127.0.0.1:1", f"127.0.0.1:{port}"], 0)
  with cluster_lib.Watchdog(c, grace_secs=1.0, exit=exits.append):
    time.sleep(2.5)
    assert not exits  # Answering.
    listener.close()
    deadline = time.time() + 10
    while not exits and time.time() < deadline:
      time.sleep(0.2)
  assert exits == [3]
  assert f"worker task 1 (127.0.0.1:{port}) stopped answering" in capsys.readouterr().err


# -- end to end with worker processes ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("n, mesh", [(2, "model:2"), (2, "batch:2"), (4, "model:2,batch:2")])
def test_training_over_workers_equals_one_process(tmp_path, workers, n, mesh):
  shape = f"--gin_param=RunSettings.mesh_shape='{mesh}'"
  w = workers(n)
  done = chief(tmp_path / "cluster", w, shape, *STEPS)
  assert done.returncode == 0, done.stderr[-3000:]
  assert f"/task:{n - 1}/device:CPU:0" in done.stderr  # The mesh reached the last task.
  subprocess.run(main_cmd(tmp_path / "one", shape, *STEPS), check=True, capture_output=True,
                 timeout=300)
  assert_same_run(tmp_path / "one", tmp_path / "cluster")
  if n == 2 and mesh == "model:2":  # Decoding over the cluster: the same tokens.
    inputs = tmp_path / "in.txt"
    inputs.write_text("translate English to German: The house is wonderful.\n"
                      "summarize: the cat sat on the mat and would not move\n")
    predict = ["--mode=predict", f"--input_file={inputs}", "--gin_param=RunSettings.batch_size=2"]
    out = chief(tmp_path / "cluster", w, shape, *predict, f"--output_file={tmp_path}/c.txt")
    assert out.returncode == 0, out.stderr[-3000:]
    subprocess.run(main_cmd(tmp_path / "cluster", shape, *predict,
                            f"--output_file={tmp_path}/o.txt"), check=True, capture_output=True,
                   timeout=300)
    assert (tmp_path / "c.txt").read_text() == (tmp_path / "o.txt").read_text()
    assert len((tmp_path / "c.txt").read_text().splitlines()) == 2
    _other_modes(tmp_path, w, shape, inputs)


def _other_modes(tmp_path, w, shape, inputs):
  """score, eval and finetune through the cluster give what one process gives."""
  pairs = tmp_path / "pairs.tsv"
  pairs.write_text("".join(f"{line}\tDas Haus.\n" for line in inputs.read_text().splitlines()))
  score = ["--mode=score", f"--input_file={pairs}", "--gin_param=RunSettings.batch_size=2"]
  assert chief(tmp_path / "cluster", w, shape, *score,
               f"--output_file={tmp_path}/cs.txt").returncode == 0
  subprocess.run(main_cmd(tmp_path / "cluster", shape, *score, f"--output_file={tmp_path}/os.txt"),
                 check=True, capture_output=True, timeout=300)
  np.testing.assert_allclose(np.loadtxt(tmp_path / "cs.txt"), np.loadtxt(tmp_path / "os.txt"),
                             atol=1e-4)
  evaluate = ["--mode=eval", "--gin_param=RunSettings.eval_tasks=['glue_sst2_local']",
              "--gin_param=RunSettings.eval_max_examples=4"]
  on_cluster = chief(tmp_path / "cluster", w, shape, *evaluate)
  assert on_cluster.returncode == 0, on_cluster.stderr[-3000:]
  cluster_eval = json.loads((tmp_path / "cluster" / "eval_results.json").read_text())
  subprocess.run(main_cmd(tmp_path / "cluster", shape, *evaluate), check=True,
                 capture_output=True, timeout=300)
  assert json.loads((tmp_path / "cluster" / "eval_results.json").read_text()) == cluster_eval
  tuned = chief(tmp_path / "tuned", w, shape, "--mode=finetune", *STEPS,
                f"--gin_param=RunSettings.init_checkpoint='{tmp_path / 'cluster'}'",
                "--gin_param=RunSettings.train_steps=2")
  assert tuned.returncode == 0, tuned.stderr[-3000:]
  assert checkpoints.latest_step(str(tmp_path / "tuned")) == 2
  # export with the cluster's flags: a SavedModel for one host, no cluster device in it.
  exported = chief(tmp_path / "cluster", w, shape, "--mode=export",
                   f"--export_dir={tmp_path / 'export'}")
  assert exported.returncode == 0, exported.stderr[-3000:]
  saved, = (tmp_path / "export").glob("*/saved_model.pb")
  assert b"/job:worker" not in saved.read_bytes()


@pytest.mark.slow
def test_killed_worker_stops_the_chief_and_the_same_command_resumes_exactly(tmp_path, workers):
  steps = ["--gin_param=RunSettings.train_steps=20",
           "--gin_param=RunSettings.save_checkpoints_steps=5",
           "--gin_param=RunSettings.log_every_steps=1",
           "--gin_param=RunSettings.mesh_shape='model:2'"]
  w = workers(2)
  d = tmp_path / "cluster"
  proc = subprocess.Popen(main_cmd(d, w.flag, "--task_index=0", *steps),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 240
  while time.time() < deadline and checkpoints.latest_step(str(d)) < 10:
    time.sleep(0.1)
  w.kill(1)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 3, err[-3000:]
  assert f"worker task 1 ({w.hosts[1]}) stopped answering" in err
  stopped_at = checkpoints.latest_step(str(d))
  assert 10 <= stopped_at < 20
  w.start(1)
  done = chief(d, w, *steps)
  assert done.returncode == 0, done.stderr[-3000:]
  assert checkpoints.latest_step(str(d)) == 20
  straight = chief(tmp_path / "straight", w, *steps)  # Uninterrupted, on the same cluster.
  assert straight.returncode == 0, straight.stderr[-3000:]
  assert_same_run(tmp_path / "straight", d)


@pytest.mark.slow
def test_the_mesh_lives_on_the_other_process(tmp_path, workers):
  """One training step through the chief's server, traced: the slices of the split variables
  and the matmuls on them run on task 1's device, half of them, not all on the chief."""
  from t5mtf import config_gin
  from t5mtf.train import loop, model_fn as model_fn_lib
  w = workers(2)
  c = cluster_lib.Cluster(w.hosts, 0)
  connection = cluster_lib.connect(c, 60)
  params = [p.split("=", 1)[1] for p in TINY if p.startswith("--gin_param=")]
  settings = config_gin.settings_from_gin(["models/tiny.gin"], params + [
      "RunSettings.mesh_shape='model:2'"], str(tmp_path / "m"))
  settings = cluster_lib.settings_for(settings, connection)
  with tf.Graph().as_default():
    iterator = tf.data.make_initializable_iterator(loop._train_input_fn(settings, 0)(None))
    features = iterator.get_next()
    spec = model_fn_lib.model_fn_builder(settings)(features, None, "train")
    # mtf keeps the slice variables out of every collection: find them among the graph's ops.
    slices = [op for op in tf.get_default_graph().get_operations()
              if op.type in ("VariableV2", "VarHandleOp") and "_slice_" in op.name]
    on = {k: sum(tf.TensorShape(op.get_attr("shape")).num_elements() for op in slices
                 if f"/task:{k}/" in op.device) for k in (0, 1)}
    assert on[1] > 0 and on[0] == on[1], on  # Half of every split variable on each task.
    restore = [h for h in spec.training_chief_hooks if isinstance(h, mtf.MtfRestoreHook)]
    metadata = tf.RunMetadata()
    creator = tf.train.ChiefSessionCreator(
        master=connection.target, config=tf.ConfigProto(isolate_session_state=True))
    with tf.train.MonitoredSession(creator, hooks=restore) as sess:
      sess.run(iterator.initializer)
      sess.run(spec.train_op, options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE),
               run_metadata=metadata)
  ran = {}
  for dev in metadata.step_stats.dev_stats:
    task = 1 if "/task:1/" in dev.device else 0
    for node in dev.node_stats:
      op = node.timeline_label.split("=")[-1].split("(")[0].strip()
      if any(m in op for m in ("MatMul", "Einsum")):
        ran[task] = ran.get(task, 0) + 1
  assert ran.get(1, 0) > 0 and ran[1] >= 0.3 * (ran[0] + ran[1]), ran
  print(f"slice parameters per task {on}; matmuls run per task {ran}")
