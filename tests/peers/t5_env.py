"""Builds (once) or reuses the original t5 package's environment (t5==0.9.4 on mesh-tensorflow,
by ../shared/peers/install_t5_peer.sh, about 2 minutes and 3.9 GB) and asks it questions through
t5_oracle.py, one process per call: ``ask([job, ...]) -> [answer, ...]``.

The environment lives under ~/.cache/t5mtf/peers/t5 (or $T5MTF_T5_PEER), shared with
bench/pipeline.py; it cannot be ours (t5 pins another protobuf and imports torch).
"""
import json
import os
import subprocess
import tempfile

from tests.peers import venv

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_DIR = os.path.expanduser("~/.cache/t5mtf/peers/t5")
SPM = os.path.join(ROOT, "data", "vocab", "t5_cc_all_32000_spiece.model")


def python():
  script = os.path.join(ROOT, "..", "shared", "peers", "install_t5_peer.sh")
  return venv.ensure(os.environ.get("T5MTF_T5_PEER", DEFAULT_DIR),
                     "import t5.data, mesh_tensorflow",
                     lambda root: subprocess.run(["bash", script, root], check=True))


def plain(value):
  """numpy values of our datasets -> what the oracle's JSON holds (str, int, float, lists)."""
  import numpy as np
  if isinstance(value, (bytes, np.bytes_)):
    return value.decode("utf-8")
  if isinstance(value, np.ndarray):
    return [plain(v) for v in value.tolist()]
  if isinstance(value, (list, tuple)):
    return [plain(v) for v in value]
  if isinstance(value, np.generic):
    return value.item()
  return value


def ask(jobs, timeout=1800):
  """Runs the jobs in the original code; a job the original could not do comes back as
  {"error": "..."}."""
  with tempfile.TemporaryDirectory() as tmp:
    request, response = os.path.join(tmp, "request.json"), os.path.join(tmp, "response.json")
    with open(request, "w") as f:
      json.dump(jobs, f)
    env = dict(os.environ, T5MTF_SPM_PATH=SPM, TF_CPP_MIN_LOG_LEVEL="3",
               CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([python(), os.path.join(ROOT, "tests", "peers", "t5_oracle.py"),
                           request, response], capture_output=True, text=True, timeout=timeout,
                          env=env)
    if proc.returncode:
      raise RuntimeError(f"t5 oracle failed:\n{proc.stderr[-3000:]}")
    with open(response) as f:
      return json.load(f)


def ok(answer):
  if "error" in answer:
    raise AssertionError(f"the original code failed: {answer['error'][-2000:]}")
  return answer["ok"]
