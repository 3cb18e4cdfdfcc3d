"""Result files written whole or not at all: into ``<path>.tmp-<pid>`` then renamed, so that a
kill never leaves a half-written result; leftovers of killed writers are removed by the next."""
import glob
import os
import shutil


def _alive(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def remove_stale(path):
  """Deletes ``<path>.tmp-<pid>`` files or folders whose writer is no longer running."""
  for tmp in glob.glob(glob.escape(path) + ".tmp-*"):
    suffix = tmp.rsplit(".tmp-", 1)[1]
    if suffix.isdigit() and int(suffix) != os.getpid() and not _alive(int(suffix)):
      if os.path.isdir(tmp):
        shutil.rmtree(tmp, ignore_errors=True)
      else:
        try:
          os.remove(tmp)
        except OSError:
          pass


def staging_dir(path):
  """A fresh ``<path>.tmp-<pid>`` folder (stale ones of dead writers removed first)."""
  remove_stale(path)
  tmp = f"{path.rstrip('/')}.tmp-{os.getpid()}"
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  return tmp


def write_text(path, text):
  remove_stale(path)
  tmp = f"{path}.tmp-{os.getpid()}"
  try:
    with open(tmp, "w", encoding="utf-8") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def write_lines(path, lines):
  """One line per item (newlines inside an item become spaces)."""
  write_text(path, "".join(line.replace("\n", " ") + "\n" for line in lines))
