"""A peer's virtual environment, built once and reused while it still imports its packages."""
import fcntl
import os
import subprocess


def ensure(root, probe, build):
  """Path to ``root``'s python; ``build(root)`` runs first if ``probe`` (Python code) fails.
  One build at a time (test workers run side by side): the others wait and find it built."""
  exe = os.path.join(root, "bin", "python")
  os.makedirs(os.path.dirname(root.rstrip("/")) or ".", exist_ok=True)
  with open(root.rstrip("/") + ".lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    ok = os.path.exists(exe) and subprocess.run([exe, "-c", probe],
                                                capture_output=True).returncode == 0
    if not ok:
      build(root)
  return exe
