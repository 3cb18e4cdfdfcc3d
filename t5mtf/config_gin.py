"""Gin parsing with errors that name the problem: a missing gin file, a typo in a binding
(with the closest valid name), a value that must be set."""
import difflib
import logging
import os
import re
import tokenize

import gin

GIN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gin")


def _not_a_missed_include(record):
  """gin looks for an include (``include 'experiments/baseline.gin'``) in the current
  directory, then as a file inside a Python package, logging an ERROR "Path not found" when
  there is no such package, before it finds the file under GIN_DIR: a successful run would
  print error lines. A file that is truly missing still fails, naming the file."""
  return not (record.pathname.endswith(os.path.join("gin", "resource_reader.py"))
              and str(record.msg).startswith("Path not found"))


logging.getLogger().addFilter(_not_a_missed_include)


class GinConfigError(ValueError):
  pass


def resolve_gin_file(path):
  for candidate in (path, os.path.join(GIN_DIR, path), os.path.join(GIN_DIR, path + ".gin")):
    if os.path.isfile(candidate):
      return candidate
  raise GinConfigError(f"gin file {path!r} not found (looked in the current directory and "
                       f"{GIN_DIR})")


def _configurables():
  """{name: [parameter names]} of the configurables t5mtf registers."""
  from t5mtf.models import config as model_config  # noqa: F401  (registers ModelConfig)
  from t5mtf.train import optimizers, settings  # noqa: F401
  import dataclasses
  import inspect
  out = {}
  for cls in (model_config.ModelConfig, settings.RunSettings):
    out[cls.__name__] = [f.name for f in dataclasses.fields(cls)]
  for fn in (optimizers.rsqrt_decay, optimizers.constant_learning_rate, optimizers.triangular,
             optimizers.adafactor):
    out[fn.__name__] = list(inspect.signature(fn).parameters)
  return out


def _first_bad_binding(gin_params):
  """The first binding that does not parse on its own (None if each does)."""
  for binding in gin_params:
    if "=" not in binding:
      return binding
    try:
      with gin.unlock_config():
        gin.parse_config(binding)
    except Exception:  # noqa: BLE001  (any parse failure points at this binding)
      return binding
  return None


def _first_untokenizable(files):
  """The first gin file Python's tokenizer (gin's) cannot read to its end."""
  for path in files:
    try:
      with open(path, encoding="utf-8") as f:
        for _ in tokenize.generate_tokens(f.readline):
          pass
    except (tokenize.TokenError, SyntaxError, UnicodeDecodeError):
      return path
  return files  # An included file: name them all.


def explain(error, binding=None):
  """A gin error -> a message naming the binding and the closest valid one."""
  msg = str(error)
  known = _configurables()
  if binding is not None and "=" not in binding:
    return (f"--gin_param={binding!r} has no value; write it as Name.parameter=value, e.g. "
            "RunSettings.train_steps=100")
  if binding is not None and ("malformed node" in msg or "invalid syntax" in msg
                              or "Could not parse" in msg or "EOF" in msg):
    return (f"--gin_param={binding!r}: the value is not a Python literal (numbers as 100 or "
            "1e-3, strings in quotes: RunSettings.mesh_shape='model:2', tuples as ('a', 'b'))")
  m = re.search(r"No configurable matching '([^']+)'", msg)
  if m:
    close = difflib.get_close_matches(m.group(1).split(".")[-1], known, n=1)
    return f"unknown configurable {m.group(1)!r}" + (f"; did you mean {close[0]!r}?" if close
                                                    else f"; known: {sorted(known)}")
  m = re.search(r"Configurable '([^']+)' doesn't have a parameter named '([^']+)'", msg)
  if m and m.group(1) in known:
    close = difflib.get_close_matches(m.group(2), known[m.group(1)], n=1)
    return (f"{m.group(1)} has no parameter {m.group(2)!r}"
            + (f"; did you mean {m.group(1)}.{close[0]}?" if close else ""))
  return msg.splitlines()[0] if msg else repr(error)


def settings_from_gin(gin_files=(), gin_params=(), model_dir=None, needs_model_dir=True):
  from t5mtf.train import settings as settings_lib
  _configurables()
  gin.clear_config()
  files = [resolve_gin_file(f) for f in gin_files]
  try:
    gin.parse_config_files_and_bindings(files, list(gin_params), skip_unknown=False,
                                        finalize_config=False)
  except (OSError, UnicodeDecodeError) as e:  # Before ValueError, which UnicodeDecodeError is.
    where = getattr(e, "filename", None) or _first_untokenizable(files)
    raise GinConfigError(f"gin: cannot read {where}: "
                         f"{e.__class__.__name__}: {str(e).splitlines()[0][:200]}") from None
  except tokenize.TokenError:  # gin tokenizes with Python's: an unclosed bracket or string.
    gin.clear_config()
    bad = _first_bad_binding(gin_params)
    gin.clear_config()
    where = f"--gin_param={bad!r}" if bad else f"gin file {_first_untokenizable(files)}"
    raise GinConfigError(f"gin: {where} ends inside an unclosed bracket or string") from None
  except (ValueError, KeyError, SyntaxError, gin.config.ParseError if hasattr(gin.config,
                                                                                "ParseError")
          else ValueError) as e:
    gin.clear_config()
    bad = _first_bad_binding(gin_params)
    gin.clear_config()
    raise GinConfigError(f"gin: {explain(e, bad)}") from None
  if not model_dir and not needs_model_dir:
    model_dir = "/tmp/t5mtf_info"
  try:
    return settings_lib.RunSettings(model_dir=model_dir)
  except (ValueError, TypeError, RuntimeError) as e:
    raise GinConfigError(explain(e)) from None
