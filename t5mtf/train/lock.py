"""One writer per model_dir: training holds an exclusive lock on ``model_dir/.lock`` (an
advisory ``flock``, released by the kernel when the process ends, so a killed run leaves no
stale lock). A second process gets one line naming the holder's host and pid."""
import fcntl
import json
import os
import socket
import time


class ModelDirBusyError(ValueError):
  pass


class ModelDirLock:
  def __init__(self, model_dir):
    self.path = os.path.join(model_dir, ".lock")
    self.fd = None

  def __enter__(self):
    os.makedirs(os.path.dirname(self.path), exist_ok=True)
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = _read(fd)
      os.close(fd)
      raise ModelDirBusyError(
          f"{os.path.dirname(self.path)} is being trained by process {holder.get('pid', '?')} "
          f"on {holder.get('host', '?')} (since {holder.get('since', '?')}); wait for it to "
          "finish or use another --model_dir") from None
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                             "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
    self.fd = fd
    return self

  def __exit__(self, *exc):
    if self.fd is not None:
      fcntl.flock(self.fd, fcntl.LOCK_UN)
      os.close(self.fd)
      self.fd = None
    return False


def _read(fd):
  try:
    os.lseek(fd, 0, os.SEEK_SET)
    return json.loads(os.read(fd, 4096).decode() or "{}")
  except (OSError, ValueError):
    return {}
