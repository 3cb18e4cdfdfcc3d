"""Builds (once) or reuses the Hugging Face peer environment: torch on CPU + transformers.

torch cannot share an environment with TensorFlow 2.12 (typing-extensions >= 4.10 against
< 4.6), so the peer lives in its own venv under ~/.cache (or $T5MTF_HF_PEER) and exchanges
arrays with the tests through .npz files.
"""
import os
import subprocess
import sys

from tests.peers import venv

PEER_PACKAGES = ["torch==2.13.0", "transformers==5.24.0", "safetensors==0.8.0", "numpy",
                 "sentencepiece"]
DEFAULT_DIR = os.path.expanduser("~/.cache/t5mtf/peers/hf")


def python():
  """Path to the peer's python, building the venv if it is not there (about 40 s)."""
  def build(root):
    subprocess.run(["python3", "-m", "venv", root], check=True)
    subprocess.run([os.path.join(root, "bin", "python"), "-m", "pip", "install", "-q",
                    *PEER_PACKAGES], check=True)
  return venv.ensure(os.environ.get("T5MTF_HF_PEER", DEFAULT_DIR), "import torch, transformers",
                     build)


def run(script, *args):
  here = os.path.dirname(os.path.abspath(__file__))
  subprocess.run([python(), os.path.join(here, script), *map(str, args)], check=True,
                 timeout=900)


if __name__ == "__main__":
  print(python(), file=sys.stderr)
