"""Task and Mixture, and their explicit registries.

A Task reads as a catalog entry: a source, its preprocessors in order, the output features, and how
to postprocess and score predictions. ``Task.get_dataset`` runs::

    source.get_dataset(split) -> [shuffle] -> preprocessors... -> append EOS + trim

Tasks are registered explicitly by the catalog functions in ``t5mtf.data.tasks`` (nothing registers
on import); ``get_mixture_or_task`` registers the built-in catalogs on first use. Tests reset the
registries with ``reset_registries()``.
"""
import dataclasses
import functools
import difflib
import hashlib
from typing import Any, Callable, Mapping, Optional, Sequence

import tensorflow as tf

from t5mtf.data import preprocessors as prep
from t5mtf.data import vocab as vocab_lib


@dataclasses.dataclass(frozen=True)
class Feature:
  vocabulary: Any = dataclasses.field(default_factory=vocab_lib.get_default_vocabulary)
  add_eos: bool = True


def default_output_features(vocabulary=None):
  vocabulary = vocabulary or vocab_lib.get_default_vocabulary()
  return {"inputs": Feature(vocabulary), "targets": Feature(vocabulary)}


def _stable_seed(*parts):
  """A 31-bit seed from strings/ints, stable across processes (unlike hash())."""
  digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
  return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


class Task:
  """One dataset in text-to-text form."""

  def __init__(self, name, source, preprocessors: Sequence[Callable] = (),
               output_features: Optional[Mapping[str, Feature]] = None,
               postprocess_fn: Optional[Callable] = None,
               metric_fns: Sequence[Callable] = (), shuffle_buffer_size=10_000):
    self.name = name
    self.source = source
    self.preprocessors = list(preprocessors)
    self.output_features = dict(output_features or default_output_features())
    self.postprocess_fn = postprocess_fn
    self.metric_fns = list(metric_fns)
    self.shuffle_buffer_size = shuffle_buffer_size

  @property
  def splits(self):
    return self.source.splits

  def num_input_examples(self, split):
    from t5mtf.data.sources import SourceError
    try:
      return self.source.num_examples(split)
    except SourceError as e:
      raise SourceError(f"task {self.name}: {e}") from None

  def get_dataset(self, sequence_length=None, split="train", shuffle=True, seed=0,
                  num_epochs=1):
    """Tokenized examples: ``{"inputs": int32 [<=L_in], "targets": int32 [<=L_t], ...}``.

    ``seed`` fixes the shuffle and every random preprocessor; ``num_epochs=None`` repeats forever
    (each epoch reshuffled and re-noised, deterministically).
    """
    if split not in self.splits:
      raise ValueError(f"task {self.name!r} has no split {split!r}; it has {list(self.splits)}")
    from t5mtf.data.sources import SourceError
    try:
      ds = self.source.get_dataset(split)
    except SourceError as e:
      raise SourceError(f"task {self.name}: {e}") from None
    if num_epochs != 1:
      ds = ds.repeat(num_epochs)
    if shuffle:
      ds = ds.shuffle(self.shuffle_buffer_size, seed=_stable_seed(self.name, seed, "shuffle"),
                      reshuffle_each_iteration=True)
    for i, fn in enumerate(self.preprocessors):
      ds = prep.call_with_wanted_kwargs(
          fn, ds, sequence_length=sequence_length, output_features=self.output_features,
          seed=_stable_seed(self.name, seed, i), split=split)
    # Other features (ids, answer lists) stay for the metrics; batching keeps only tokens.
    return prep.append_eos_after_trim(ds, self.output_features, sequence_length,
                                      count_as=self.name)

  def postprocess(self, text, example=None, is_target=False):
    if self.postprocess_fn is None:
      return text
    return self.postprocess_fn(text, example=example, is_target=is_target)

  def __repr__(self):
    return f"Task({self.name!r})"


class Mixture:
  """Tasks sampled with fixed rates: ``rates`` is a list of floats or a function(task) -> float
  (see ``t5mtf.data.mixing``)."""

  def __init__(self, name, tasks, rates=None):
    self.name = name
    self._task_names = [t if isinstance(t, str) else t.name for t in tasks]
    self._rates = rates

  @property
  def tasks(self):
    return [get_task(n) for n in self._task_names]

  def rates(self):
    from t5mtf.data import mixing
    tasks = self.tasks
    if self._rates is None:
      return mixing.equal_rates(tasks)
    if callable(self._rates):
      return [float(self._rates(t)) for t in tasks]
    return [float(r) for r in self._rates]

  def get_dataset(self, sequence_length=None, split="train", shuffle=True, seed=0,
                  num_epochs=None):
    from t5mtf.data import mixing
    # Only the token features are shared by every task; metric extras differ per task.
    # Tasks with rate 0 (evaluation-only ones, e.g. MNLI's matched set) are not read.
    kept = [(t, r) for t, r in zip(self.tasks, self.rates()) if r > 0]
    datasets = [t.get_dataset(sequence_length, split, shuffle, seed, num_epochs=num_epochs)
                .map(functools.partial(_select, keys=tuple(t.output_features)))
                for t, _ in kept]
    return mixing.sample(datasets, [r for _, r in kept], seed=_stable_seed(self.name, seed))

  def __repr__(self):
    return f"Mixture({self.name!r}, {self._task_names})"


def _select(ex, keys):
  return {k: ex[k] for k in keys}


# ------------------------------------------------------------------------------------------------
# Registries
# ------------------------------------------------------------------------------------------------
_TASKS = {}
_MIXTURES = {}
_CATALOGS_LOADED = [False]


def add_task(task):
  if task.name in _TASKS or task.name in _MIXTURES:
    raise ValueError(f"a task or mixture named {task.name!r} is already registered")
  _TASKS[task.name] = task
  return task


def add_mixture(mixture):
  if mixture.name in _TASKS or mixture.name in _MIXTURES:
    raise ValueError(f"a task or mixture named {mixture.name!r} is already registered")
  _MIXTURES[mixture.name] = mixture
  return mixture


def reset_registries():
  _TASKS.clear()
  _MIXTURES.clear()
  _CATALOGS_LOADED[0] = False


def _ensure_catalogs():
  if not _CATALOGS_LOADED[0]:
    _CATALOGS_LOADED[0] = True
    from t5mtf.data import tasks
    tasks.register_all()


def _unknown(name):
  names = list(_TASKS) + list(_MIXTURES)
  close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
  return ValueError(f"no task or mixture named {name!r}"
                    + (f"; did you mean one of {close}?" if close else "")
                    + f" ({len(names)} are registered)")


def get_task(name):
  _ensure_catalogs()
  if name in _MIXTURES:
    raise ValueError(f"{name!r} is a mixture, where a task is needed; name one of its "
                     f"{len(_MIXTURES[name]._task_names)} tasks, e.g. "
                     f"{_MIXTURES[name]._task_names[0]!r}")
  if name not in _TASKS:
    raise _unknown(name)
  return _TASKS[name]


def get_mixture_or_task(name):
  _ensure_catalogs()
  if name in _TASKS:
    return _TASKS[name]
  if name in _MIXTURES:
    return _MIXTURES[name]
  raise _unknown(name)


def task_names():
  _ensure_catalogs()
  return sorted(_TASKS)


def mixture_names():
  _ensure_catalogs()
  return sorted(_MIXTURES)
