"""One way for every command line to end: a user error (a bad flag, file, value, binding or
checkpoint) prints one line that names it and exits 2; the traceback shows only with
``--verbosity=1`` (or ``-v 1``) or T5MTF_TRACEBACK=1. Anything else is a bug and keeps its
traceback.
"""
import os
import sys

USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, IsADirectoryError,
               NotADirectoryError, PermissionError, UnicodeDecodeError, KeyboardInterrupt)


def _tf_user_errors():
  """TensorFlow's errors for unreadable files and data (NotFound, DataLoss, InvalidArgument,
  FailedPrecondition, OutOfRange)."""
  if "tensorflow" not in sys.modules:
    return ()
  import tensorflow as tf
  e = tf.errors
  return (e.NotFoundError, e.DataLossError, e.InvalidArgumentError, e.FailedPreconditionError,
          e.PermissionDeniedError)


def one_line(error):
  """The first meaningful line of an error's message, with its type for TF errors."""
  text = str(error).strip() or type(error).__name__
  if isinstance(error, KeyboardInterrupt):
    return "interrupted"
  lines = [l.strip() for l in text.splitlines() if l.strip()]
  first = lines[0] if lines else text
  if type(error).__module__.startswith("tensorflow"):
    first = f"{type(error).__name__}: {first}"
  return first[:2000]


def _verbose():
  if os.environ.get("T5MTF_TRACEBACK"):
    return True
  try:
    from absl import flags
    return flags.FLAGS.is_parsed() and flags.FLAGS.verbosity >= 1
  except Exception:  # noqa: BLE001  (flags not defined: not an absl program)
    return False


def guarded(main):
  """Wraps ``main(argv)``: user errors -> "error: ..." on stderr, exit 2."""
  def run(*args, **kwargs):
    try:
      return main(*args, **kwargs)
    except SystemExit:
      raise
    except USER_ERRORS + _tf_user_errors() as e:
      if _verbose():
        raise
      print(f"error: {one_line(e)}", file=sys.stderr)
      sys.exit(130 if isinstance(e, KeyboardInterrupt) else 2)
  return run


def check_output_file(flag, path):
  """Before any work: the folder of an output file exists and the path is not a folder (else
  SystemExit with one line naming the flag)."""
  folder = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(folder):
    raise SystemExit(f"error: {flag}={path}: folder {folder} does not exist; create it first")
  if os.path.isdir(path):
    raise SystemExit(f"error: {flag}={path} is a folder; give a file path")
