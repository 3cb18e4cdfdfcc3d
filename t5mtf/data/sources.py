"""Data sources: where a Task's raw examples come from, as datasets of string feature dicts.

A source maps ``split -> tf.data.Dataset`` of ``{feature: tf.string}``. The paper's data comes from
TFDS (``TfdsSource``, builder names and splits as the paper used them); offline runs and tests read
local files with the same feature names (``TextLineSource``, ``DelimitedSource``, ``JsonlSource``,
``TFRecordSource``).

Local text sources are parsed eagerly in Python: files shipped with a project are small, and this
way a malformed row gets an error naming the file and the row instead of a wrong example. Large
corpora go through TFRecord (what ``t5mtf.data.c4`` writes) or TFDS.
"""
import csv
import glob
import gzip
import json
import os

import tensorflow as tf


class SourceError(ValueError):
  """A local data file that cannot be read as its source says."""


def _expand(patterns):
  patterns = [patterns] if isinstance(patterns, str) else list(patterns)
  files = []
  for p in patterns:
    matched = sorted(glob.glob(p))
    if not matched:
      raise SourceError(f"no file matches {p!r}")
    files.extend(matched)
  return files


def _read_text(path):
  opener = gzip.open if path.endswith(".gz") else open
  try:
    with opener(path, "rb") as f:
      raw = f.read()
  except (OSError, EOFError) as e:  # Truncated or corrupt gzip.
    raise SourceError(f"{path}: cannot read: {e}") from None
  try:
    text = raw.decode("utf-8")
  except UnicodeDecodeError as e:
    line = raw[:e.start].count(b"\n") + 1
    raise SourceError(f"{path}: line {line}: not UTF-8 ({e.reason} at byte {e.start})") from None
  if not text.strip():
    raise SourceError(f"{path}: file is empty")
  return text


def rows_to_dataset(rows, feature_names):
  columns = {k: [r[k] for r in rows] for k in feature_names}
  return tf.data.Dataset.from_tensor_slices(
      {k: tf.constant(v, tf.string, shape=[len(v)]) for k, v in columns.items()})


class Source:
  """Base class: ``get_dataset(split)``, ``splits`` and ``num_examples(split)`` where known."""

  splits = ()

  def get_dataset(self, split):
    raise NotImplementedError

  def num_examples(self, split):
    return None

  def _check_split(self, split):
    if split not in self.splits:
      raise ValueError(f"{self!r} has no split {split!r}; it has {sorted(self.splits)}")


class InMemorySource(Source):
  """Rows parsed once per split by ``_parse(path) -> list[dict]``; cached.

  ``valid_values`` ({feature: allowed strings}) rejects rows whose value is outside the set,
  naming the file and row (e.g. a label outside the task's label set).
  """

  valid_values = None

  def __init__(self, split_to_files):
    self.split_to_files = dict(split_to_files)
    self.splits = tuple(self.split_to_files)
    self._cache = {}

  def rows(self, split):
    self._check_split(split)
    if split not in self._cache:
      rows = []
      for path in _expand(self.split_to_files[split]):
        parsed = self._parse(path)
        self._validate(path, parsed)
        rows.extend(parsed)
      if not rows:
        raise SourceError(f"{self!r}: split {split!r} has no rows")
      self._cache[split] = rows
    return self._cache[split]

  def _validate(self, path, rows):
    for feature, allowed in (self.valid_values or {}).items():
      for i, row in enumerate(rows, start=1):
        if row.get(feature) not in allowed:
          raise SourceError(f"{path}: example {i}: {feature} {row.get(feature)!r} is not one "
                            f"of {sorted(allowed)}")

  def with_valid_values(self, **valid_values):
    self.valid_values = {k: set(v) for k, v in valid_values.items()}
    return self

  def get_dataset(self, split):
    rows = self.rows(split)
    return rows_to_dataset(rows, list(rows[0]))

  def num_examples(self, split):
    return len(self.rows(split))

  def __repr__(self):
    return f"{type(self).__name__}({self.split_to_files})"


class TextLineSource(InMemorySource):
  """One example per non-empty line: ``{"text": line}``."""

  def _parse(self, path):
    return [{"text": line} for line in _read_text(path).splitlines() if line.strip()]


class DelimitedSource(InMemorySource):
  """TSV/CSV rows. ``columns`` maps feature name -> column name (header) or index (no header)."""

  def __init__(self, split_to_files, columns, delimiter="\t", has_header=True, quoting=True):
    super().__init__(split_to_files)
    self.columns, self.delimiter, self.has_header = dict(columns), delimiter, has_header
    self.quoting = csv.QUOTE_MINIMAL if quoting else csv.QUOTE_NONE

  def _parse(self, path):
    reader = csv.reader(_read_text(path).splitlines(), delimiter=self.delimiter,
                        quoting=self.quoting)
    header = next(reader) if self.has_header else None
    index = {}
    for feature, col in self.columns.items():
      if isinstance(col, int):
        index[feature] = col
      elif header is None or col not in header:
        raise SourceError(f"{path}: no column {col!r} (header: {header})")
      else:
        index[feature] = header.index(col)
    rows = []
    for row_num, row in enumerate(reader, start=2 if header else 1):
      if not row:
        continue
      missing = [f for f, i in index.items() if i >= len(row)]
      if missing:
        raise SourceError(f"{path}: row {row_num}: missing field(s) {missing} "
                          f"(row has {len(row)} columns)")
      rows.append({f: row[i] for f, i in index.items()})
    return rows


class JsonlSource(InMemorySource):
  """One JSON object per line. ``fields`` maps feature -> key (nested keys joined by '/');
  non-string values are JSON-encoded so that structured fields survive as strings.
  ``row_fn(obj) -> list[dict]`` instead flattens one object into several rows (MultiRC,
  ReCoRD); a KeyError there is reported with the file and line."""

  def __init__(self, split_to_files, fields=None, row_fn=None):
    super().__init__(split_to_files)
    self.fields = dict(fields or {})
    self.row_fn = row_fn

  def _parse(self, path):
    rows = []
    for line_num, line in enumerate(_read_text(path).splitlines(), start=1):
      if not line.strip():
        continue
      try:
        obj = json.loads(line)
      except json.JSONDecodeError as e:
        raise SourceError(f"{path}: line {line_num}: invalid JSON ({e.msg})") from None
      if self.row_fn is not None:
        try:
          rows.extend(self.row_fn(obj))
        except (KeyError, TypeError, IndexError) as e:
          raise SourceError(f"{path}: line {line_num}: missing or malformed field {e}") from None
        continue
      row = {}
      for feature, key in self.fields.items():
        value = obj
        for part in key.split("/"):
          if not isinstance(value, dict) or part not in value:
            raise SourceError(f"{path}: line {line_num}: missing field {key!r}")
          value = value[part]
        row[feature] = value if isinstance(value, str) else json.dumps(value)
      rows.append(row)
    return rows


class TFRecordSource(Source):
  """tf.train.Example records with string features (what the C4 pipeline writes)."""

  def __init__(self, split_to_patterns, feature_names=("text",)):
    self.split_to_patterns = dict(split_to_patterns)
    self.splits = tuple(self.split_to_patterns)
    self.feature_names = tuple(feature_names)

  def get_dataset(self, split):
    self._check_split(split)
    files = _expand(self.split_to_patterns[split])
    spec = {k: tf.io.FixedLenFeature([], tf.string) for k in self.feature_names}
    return tf.data.TFRecordDataset(files).map(
        lambda r: tf.io.parse_single_example(r, spec), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True)


class TfdsSource(Source):
  """A TFDS builder, e.g. ``TfdsSource("glue/cola:2.0.0")``; splits as TFDS names them.

  ``data_dir`` defaults to TFDS's own. TFDS needs the prepared data (or network to prepare it):
  offline, use the local-file sources.
  """

  def __init__(self, name, splits=("train", "validation", "test"), data_dir=None,
               num_examples=None):
    self.name, self.splits, self.data_dir = name, tuple(splits), data_dir
    self._num_examples = dict(num_examples or {})  # Known sizes, for mixing rates offline.

  def get_dataset(self, split):
    self._check_split(split)
    import tensorflow_datasets as tfds
    try:
      return tfds.load(self.name, split=split, data_dir=self.data_dir, shuffle_files=False,
                       download=False)
    except (AssertionError, tfds.core.registered.DatasetNotFoundError) as e:
      # tfds says "could not find data" with an AssertionError.
      reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
      raise SourceError(f"TFDS {self.name!r} split {split!r} cannot be loaded ({reason}); "
                        f"prepare it where there is network (tfds build "
                        f"{self.name.split(':')[0]}) and set TFDS_DATA_DIR to it, or use a "
                        "task of the data shipped in data/ (names ending in _local)") from None

  def num_examples(self, split):
    return self._num_examples.get(split)

  def __repr__(self):
    return f"TfdsSource({self.name!r})"


class ConcatSource(Source):
  """Several sources with the same features, read one after the other."""

  def __init__(self, sources):
    self.sources = list(sources)
    self.splits = tuple(s for s in self.sources[0].splits
                        if all(s in src.splits for src in self.sources))

  def get_dataset(self, split):
    self._check_split(split)
    datasets = [s.get_dataset(split) for s in self.sources]
    out = datasets[0]
    for d in datasets[1:]:
      out = out.concatenate(d)
    return out

  def num_examples(self, split):
    counts = [s.num_examples(split) for s in self.sources]
    return None if None in counts else sum(counts)


class FunctionSource(Source):
  """``fn(split) -> dataset``; for tests and sources built from other sources."""

  def __init__(self, fn, splits):
    self.fn, self.splits = fn, tuple(splits)

  def get_dataset(self, split):
    self._check_split(split)
    return self.fn(split)


def data_path(*parts):
  """A path inside the project's shipped ``data/`` folder."""
  from t5mtf.data.vocab import DATA_DIR
  return os.path.join(DATA_DIR, *parts)
