"""Training and decoding over a TensorFlow cluster (several CPU/GPU hosts, no TPU).

Built on what TensorFlow and Mesh-TF already have: every task runs a ``tf.distribute.Server``
(gRPC); task 0, the chief, builds the graph, points the Estimator's sessions at its own server
and lowers the mesh with ``PlacementMeshImpl`` onto devices of any task
(``/job:worker/task:1/device:CPU:0``). The mesh's slices, their variables and their activations
live on those devices; the full (master) variables that checkpoints hold stay on the chief.

    host A$ python -m t5mtf.main --worker_hosts=A:2222,B:2222 --task_index=1   # serves
    host B$ python -m t5mtf.main --worker_hosts=A:2222,B:2222 --task_index=0 --model_dir=...

(or TF_CONFIG={"cluster": {"worker": [...]}, "task": {"type": "worker", "index": k}}).
"""
import contextlib
import dataclasses
import json
import os
import socket
import sys
import threading
import time

JOB = "worker"


@dataclasses.dataclass
class Cluster:
  hosts: list  # "host:port" per task; task 0 is the chief.
  task_index: int = 0

  @property
  def is_chief(self):
    return self.task_index == 0

  def spec(self):
    import tensorflow.compat.v1 as tf
    return tf.train.ClusterSpec({JOB: self.hosts})

  def task_name(self, k):
    return f"/job:{JOB}/task:{k}"


def from_flags(worker_hosts, task_index, environ=os.environ):
  """A Cluster from ``--worker_hosts``/``--task_index``, else from TF_CONFIG, else None."""
  if worker_hosts:
    hosts = [h.strip() for h in worker_hosts.split(",") if h.strip()]
    index = 0 if task_index is None else task_index
  elif environ.get("TF_CONFIG"):
    try:
      config = json.loads(environ["TF_CONFIG"])
      cluster, task = config.get("cluster", {}), config.get("task", {})
    except (ValueError, AttributeError) as e:
      raise ValueError(f"TF_CONFIG is not valid JSON ({e}); expected "
                       '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", '
                       '"index": k}}') from None
    if not cluster:
      return None
    # A "chief" job, as tf.estimator users write it, is task 0 in front of the workers.
    hosts = list(cluster.get("chief", [])) + list(cluster.get(JOB, []))
    unknown = sorted(set(cluster) - {"chief", JOB})
    if unknown:
      raise ValueError(f"TF_CONFIG: job(s) {unknown} are not used here (no parameter servers: "
                       "the mesh places variables); list every host under 'worker'")
    index = int(task.get("index", 0)) + (len(cluster.get("chief", []))
                                         if task.get("type", JOB) == JOB else 0)
    if task_index is not None:
      index = task_index
  else:
    if task_index:
      raise ValueError("--task_index needs --worker_hosts (or TF_CONFIG)")
    return None
  for h in hosts:
    host, _, port = h.rpartition(":")
    if not host or not port.isdigit():
      raise ValueError(f"--worker_hosts: {h!r} is not host:port")
  if len(set(hosts)) != len(hosts):
    raise ValueError(f"--worker_hosts names a host:port twice: {','.join(hosts)}")
  if not 0 <= index < len(hosts):
    raise ValueError(f"--task_index={index} is not a task of the {len(hosts)} in "
                     f"--worker_hosts (0..{len(hosts) - 1})")
  return Cluster(hosts, index)


def start_server(cluster):
  import tensorflow.compat.v1 as tf
  config = tf.ConfigProto(isolate_session_state=True)
  try:
    return tf.distribute.Server(cluster.spec(), job_name=JOB, task_index=cluster.task_index,
                                protocol="grpc", config=config, start=True)
  except (tf.errors.UnknownError, tf.errors.InvalidArgumentError) as e:
    raise ValueError(f"task {cluster.task_index} cannot serve at "
                     f"{cluster.hosts[cluster.task_index]}: {str(e).splitlines()[0]} (is the "
                     "port in use, or the host not this machine?)") from None


def serve(cluster):
  """A worker task: serves its devices to the chief until killed."""
  server = start_server(cluster)
  print(f"worker {cluster.task_index} serving at {cluster.hosts[cluster.task_index]} "
        f"({server.target}); the chief is {cluster.hosts[0]}", flush=True)
  server.join()


def free_local_ports(n):
  """n TCP ports free on 127.0.0.1 now, for a loopback cluster (tests, benchmarks)."""
  socks = [socket.socket() for _ in range(n)]
  try:
    for s in socks:
      s.bind(("127.0.0.1", 0))
    return [s.getsockname()[1] for s in socks]
  finally:
    for s in socks:
      s.close()


def _reachable(hostport, timeout=1.0):
  host, _, port = hostport.rpartition(":")
  try:
    with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
      return True
  except OSError:
    return False


def wait_for_workers(cluster, wait_secs):
  """Waits up to ``wait_secs`` for every other task to accept connections; a task that does not
  is named in the error."""
  deadline = time.time() + wait_secs
  missing = [k for k in range(len(cluster.hosts)) if k != cluster.task_index]
  while missing:
    missing = [k for k in missing if not _reachable(cluster.hosts[k])]
    if not missing:
      break
    if time.time() > deadline:
      names = ", ".join(f"task {k} ({cluster.hosts[k]})" for k in missing)
      raise ValueError(f"worker {names} not reachable after {wait_secs:g} s: start it with "
                       f"python -m t5mtf.main --worker_hosts={','.join(cluster.hosts)} "
                       f"--task_index={missing[0]}, or fix --worker_hosts")
    time.sleep(0.5)


def list_devices(target):
  """Every device of the cluster, as the chief's server sees it, by task."""
  import tensorflow.compat.v1 as tf
  with tf.Graph().as_default(), tf.Session(target) as sess:
    return [d.name for d in sess.list_devices()]


def default_devices(device_names, num_processors, num_tasks):
  """The mesh's processors spread over the tasks: each task's GPUs where it has any, else its
  CPU, in task order; with more processors than devices, consecutive processors share one."""
  by_task = []
  for k in range(num_tasks):
    mine = [d for d in device_names if f"/task:{k}/" in d]
    gpus = [d for d in mine if "/device:GPU:" in d]
    by_task += gpus or [d for d in mine if "/device:CPU:0" in d][:1]
  if not by_task:
    raise ValueError(f"the cluster reports no devices: {device_names}")
  if num_processors % len(by_task) and len(by_task) % num_processors:
    raise ValueError(
        f"mesh_shape has {num_processors} processors, which the cluster's {len(by_task)} "
        f"devices ({', '.join(by_task)}) cannot share evenly; use a mesh of {len(by_task)} "
        "processors (or a multiple), or name them with RunSettings.mesh_devices")
  if num_processors < len(by_task):
    return by_task[:num_processors]
  per = num_processors // len(by_task)
  return [by_task[i // per] for i in range(num_processors)]


@dataclasses.dataclass
class Connection:
  cluster: Cluster
  server: object
  target: str
  devices: list  # Every device name in the cluster.


def connect(cluster, wait_secs=60.0):
  """On the chief: serves task 0, waits for the others, lists the cluster's devices."""
  server = start_server(cluster)
  wait_for_workers(cluster, wait_secs)
  return Connection(cluster, server, server.target, list_devices(server.target))


def settings_for(settings, connection):
  """``settings`` run on the cluster: sessions through the chief's server and, unless
  ``mesh_devices`` names them, the mesh spread over every task."""
  from t5mtf.models import layout as layout_lib
  n = layout_lib.num_devices(settings.mesh_shape)
  devices = tuple(settings.mesh_devices) or tuple(
      default_devices(connection.devices, n, len(connection.cluster.hosts)))
  unknown = [d for d in devices if d and not any(_same_device(d, c) for c in connection.devices)]
  if unknown:
    raise ValueError(f"RunSettings.mesh_devices: {unknown} not in the cluster; it has "
                     f"{connection.devices}")
  return dataclasses.replace(settings, mesh_devices=devices, session_target=connection.target)


def _same_device(name, full):
  import tensorflow.compat.v1 as tf
  a, b = tf.DeviceSpec.from_string(name), tf.DeviceSpec.from_string(full)
  return all(getattr(a, f) in (None, getattr(b, f)) for f in
             ("job", "task", "device_type", "device_index")) and (a.replica in (None, b.replica))


class Watchdog:
  """While the chief works, checks every second that each worker still accepts connections;
  one that stops for ``grace_secs`` ends the chief with a line naming it (TensorFlow itself
  would wait for it forever, retrying the session). Whatever was checkpointed stays: the same
  command resumes from there once the worker is back."""

  def __init__(self, cluster, model_dir="", grace_secs=5.0, exit=os._exit):
    self.cluster, self.model_dir, self.grace = cluster, model_dir, grace_secs
    self._stop, self._exit = threading.Event(), exit
    self._thread = threading.Thread(target=self._watch, daemon=True)

  def __enter__(self):
    self._thread.start()
    return self

  def __exit__(self, *exc):
    self._stop.set()
    self._thread.join()

  def _watch(self):
    down = {}
    while not self._stop.wait(1.0):
      for k, host in enumerate(self.cluster.hosts):
        if k == self.cluster.task_index:
          continue
        if _reachable(host):
          down.pop(k, None)
          continue
        down.setdefault(k, time.time())
        if time.time() - down[k] >= self.grace and not self._stop.is_set():
          self._fail(k, host)
          return

  def _fail(self, k, host):
    from t5mtf.train import checkpoints
    step = checkpoints.latest_step(self.model_dir) if self.model_dir else 0
    print(f"error: worker task {k} ({host}) stopped answering; stopped. The last checkpoint "
          f"(step {step}) in {self.model_dir} is kept: restart the worker and run the same "
          "command to resume from it.", file=sys.stderr, flush=True)
    self._exit(3)


@contextlib.contextmanager
def estimator_tf_config(target):
  """The TF_CONFIG a local-mode Estimator reads at RunConfig(): its sessions (training,
  evaluation, prediction) connect to ``target``; no between-graph replication."""
  saved = os.environ.get("TF_CONFIG")
  os.environ["TF_CONFIG"] = json.dumps({"session_master": target,
                                        "eval_session_master": target})
  try:
    yield
  finally:
    if saved is None:
      os.environ.pop("TF_CONFIG", None)
    else:
      os.environ["TF_CONFIG"] = saved
