"""Builds (once) or reuses the original t5 package's environment (t5==0.9.4 on mesh-tensorflow,
the pins of ../shared/peers/install_t5_peer.sh, about 3.5 minutes and 3.9 GB) and asks it questions
through t5_oracle.py, one process per call: ``ask([job, ...]) -> [answer, ...]``.

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


# The pins of ../shared/peers/install_t5_peer.sh (found by trial on Python 3.11), held here so that
# a checkout anywhere, with no ../shared beside it, builds the same environment. t5.models imports
# torch; torch 2.13.0 needs typing-extensions >= 4.10 where TF 2.12 declares < 4.6, hence
# the no-deps step.
INSTALL_STEPS = [
    ["-U", "pip==26.3"],
    ["--no-cache-dir", "t5==0.9.4", "tensorflow==2.12.1", "tensorflow-text==2.12.1",
     "mesh-tensorflow==0.1.21", "seqio-nightly==0.0.15.dev20230715", "tensorflow-hub==0.13.0",
     "sentencepiece==0.2.2", "protobuf==3.20.3", "tensorflow-metadata==1.14.0"],
    ["--no-cache-dir", "--no-deps", "torch==2.13.0", "typing-extensions==4.15.0"],
    ["--no-cache-dir", "filelock==4.3.1", "sympy==1.14.0", "networkx==3.6.1", "jinja2==3.1.6"],
]


def build(root):
  subprocess.run(["python3", "-m", "venv", root], check=True)
  for step in INSTALL_STEPS:
    subprocess.run([os.path.join(root, "bin", "python"), "-m", "pip", "install", "-q", *step],
                   check=True)


def python():
  """Path to the peer's python, building the venv if it does not import t5 and mesh_tensorflow."""
  return venv.ensure(os.environ.get("T5MTF_T5_PEER", DEFAULT_DIR),
                     "import t5.data, mesh_tensorflow", build)


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
