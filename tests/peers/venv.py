"""A peer's virtual environment, built once and reused while it still imports its packages."""
import os
import subprocess


def ensure(root, probe, build):
  """Path to ``root``'s python; ``build(root)`` runs first if ``probe`` (Python code) fails."""
  exe = os.path.join(root, "bin", "python")
  ok = os.path.exists(exe) and subprocess.run([exe, "-c", probe],
                                              capture_output=True).returncode == 0
  if not ok:
    build(root)
  return exe
