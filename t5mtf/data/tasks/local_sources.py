"""Local-file sources for the real task samples shipped in ``data/tasks`` (data/PROVENANCE.md
says where each comes from). Each yields exactly the features of the TFDS builder the paper used,
so that a ``<name>_local`` task runs the same preprocessors as ``<name>``:

- files in the official format (SuperGLUE jsonl, GLUE SST-2/RTE/WNLI tsv) are parsed by the TFDS
  builder's own ``_generate_examples`` and encoded by its features, so TFDS's fixes (WSC spans,
  label casts) apply to local rows too;
- the other samples (CoLA in SentEval form, the original STS-B and MRPC files, SQuAD, CNN/DM,
  translation pairs) are mapped to the same features here: labels as class indices, ``idx`` the
  row number, SQuAD answers nested as TFDS nests them.
"""
import csv
import io
import json
import tempfile

import numpy as np
import tensorflow as tf

from t5mtf.data import sources as src


def _path(*parts):
  return src.data_path("tasks", *parts)


def _plain(value):
  """TFDS-encoded numpy values -> JSON-able Python (str, int, float, lists, dicts)."""
  if isinstance(value, dict):
    return {k: _plain(v) for k, v in value.items()}
  if isinstance(value, np.ndarray):
    return _plain(value.item()) if value.ndim == 0 else [_plain(v) for v in value.tolist()]
  if isinstance(value, (list, tuple)):
    return [_plain(v) for v in value]
  if isinstance(value, bytes):
    return value.decode("utf-8")
  if isinstance(value, np.generic):
    return value.item()
  return value


class TypedRowsSource(src.Source):
  """Rows as Python dicts with a ``tf.TensorSpec`` structure; ``_load(split) -> rows``."""

  def __init__(self, split_to_files, spec):
    self.split_to_files, self.spec = dict(split_to_files), spec
    self.splits = tuple(self.split_to_files)
    self._cache = {}

  def rows(self, split):
    self._check_split(split)
    if split not in self._cache:
      rows = self._load(split)
      if not rows:
        raise src.SourceError(f"{self!r}: split {split!r} has no rows")
      self._cache[split] = rows
    return self._cache[split]

  def get_dataset(self, split):
    rows = self.rows(split)
    return tf.data.Dataset.from_generator(lambda: iter(rows), output_signature=self.spec)

  def num_examples(self, split):
    return len(self.rows(split))

  def __repr__(self):
    return f"{type(self).__name__}({self.split_to_files})"


_BUILDERS = {}


def _builder(module, config):
  """A TFDS builder object used only for its parsing code and features (nothing downloaded)."""
  key = (module, config)
  if key not in _BUILDERS:
    from tensorflow_datasets.text import glue as tfds_glue, super_glue as tfds_super_glue
    cls = {"glue": tfds_glue.Glue, "super_glue": tfds_super_glue.SuperGlue}[module]
    _BUILDERS[key] = cls(config=config, data_dir=tempfile.gettempdir())
  return _BUILDERS[key]


class TfdsFileSource(TypedRowsSource):
  """Official-format files read by the TFDS builder's own code: ``module`` "glue" or
  "super_glue", ``config`` e.g. "wsc.fixed"."""

  def __init__(self, module, config, split_to_files):
    self.module, self.config = module, config
    super().__init__(split_to_files, _builder(module, config).info.features.get_tensor_spec())

  def _load(self, split):
    builder = _builder(self.module, self.config)
    path = self.split_to_files[split]
    src._read_text(path)  # Missing, empty or non-UTF-8 files are named before TFDS reads them.
    rows = []
    try:
      for _, example in builder._generate_examples(path, split):
        rows.append(_plain(builder.info.features.encode_example(example)))
    except (ValueError, KeyError, TypeError, AssertionError, json.JSONDecodeError) as e:
      raise src.SourceError(f"{path}: example {len(rows) + 1}: not a valid "
                            f"{self.module}/{self.config} row ({type(e).__name__}: {e})") from None
    return rows


class ColumnsSource(TypedRowsSource):
  """TSV/CSV files not in TFDS's format: ``convert(row: dict of column strings, n) -> row``."""

  def __init__(self, split_to_files, spec, columns, convert, delimiter="\t", has_header=True,
               quoting=False):
    super().__init__(split_to_files, spec)
    self.reader = src.DelimitedSource(split_to_files, columns, delimiter, has_header, quoting)
    self.convert = convert

  def _load(self, split):
    out = []
    for n, row in enumerate(self.reader.rows(split)):
      try:
        out.append(self.convert(row, n))
      except (ValueError, KeyError) as e:
        raise src.SourceError(f"{self.split_to_files[split]}: example {n + 1}: {e}") from None
    return out


_S = tf.TensorSpec([], tf.string)
_I32 = tf.TensorSpec([], tf.int32)
_I64 = tf.TensorSpec([], tf.int64)


def _class(value, names):
  if value not in names:
    raise ValueError(f"label {value!r} is not one of {names}")
  return names.index(value)


def _splits(folder, train="train.tsv", validation="validation.tsv"):
  return {"train": _path(folder, train), "validation": _path(folder, validation)}


def glue():
  """GLUE samples with the features of TFDS ``glue/<name>``."""
  pair = lambda a, b: {a: _S, b: _S, "label": _I64, "idx": _I32}  # noqa: E731
  return {
      "cola": ColumnsSource(_splits("glue/CoLA"), {"sentence": _S, "label": _I64, "idx": _I32},
                            {"sentence": "x", "label": "y"},
                            lambda r, n: {"sentence": r["sentence"],
                                          "label": _class(r["label"], ["0", "1"]), "idx": n}),
      "sst2": TfdsFileSource("glue", "sst2", _splits("glue/SST-2")),
      "mrpc": ColumnsSource(_splits("glue/MRPC"), pair("sentence1", "sentence2"),
                            {"sentence1": 3, "sentence2": 4, "label": 0},
                            lambda r, n: {"sentence1": r["sentence1"],
                                          "sentence2": r["sentence2"],
                                          "label": _class(r["label"], ["0", "1"]), "idx": n}),
      "stsb": ColumnsSource(_splits("glue/STS-B"), {"sentence1": _S, "sentence2": _S,
                                                    "label": tf.TensorSpec([], tf.float32),
                                                    "idx": _I32},
                            {"sentence1": 5, "sentence2": 6, "label": 4},
                            lambda r, n: {"sentence1": r["sentence1"],
                                          "sentence2": r["sentence2"],
                                          "label": float(r["label"]), "idx": n},
                            has_header=False),
      "rte": TfdsFileSource("glue", "rte", _splits("glue/RTE")),
      "wnli": TfdsFileSource("glue", "wnli", _splits("glue/WNLI")),
  }


def _fewglue(task):
  return {"train": _path("superglue_fewglue", task, "train.jsonl"),
          "validation": _path("superglue_fewglue", task, "dev32.jsonl")}


SUPER_GLUE_FOLDERS = {"boolq": "BoolQ", "cb": "CB", "copa": "COPA", "multirc": "MultiRC",
                      "record": "ReCoRD", "rte": "RTE", "wic": "WiC", "wsc": "WSC"}


def super_glue():
  """FewGLUE samples (official SuperGLUE jsonl) through TFDS ``super_glue/<config>``."""
  return {name: TfdsFileSource("super_glue", "wsc.fixed" if name == "wsc" else name,
                               _fewglue(folder))
          for name, folder in SUPER_GLUE_FOLDERS.items()}


class SquadJsonSource(TypedRowsSource):
  """SQuAD examples with TFDS ``squad`` features from a flat sample (``{"data": [{"question",
  "context", "answers": {"text": [...]}}]}``) or the official nested format
  (data/paragraphs/qas; SQuAD 2.0's unanswerable questions are left out, as v1.1 has none)."""

  SPEC = {"id": _S, "title": _S, "context": _S, "question": _S,
          "answers": {"text": tf.TensorSpec([None], tf.string),
                      "answer_start": tf.TensorSpec([None], tf.int32)}}

  def __init__(self, split_to_files):
    super().__init__(split_to_files, self.SPEC)

  def _load(self, split):
    path = self.split_to_files[split]
    try:
      data = json.loads(src._read_text(path))["data"]
    except (json.JSONDecodeError, KeyError) as e:
      raise src.SourceError(f"{path}: not a SQuAD json file ({e})") from None
    rows = []
    for item in data:
      for para in item.get("paragraphs", [{"context": item.get("context"), "qas": [item]}]):
        for qa in para["qas"]:
          answers = qa["answers"]
          if isinstance(answers, dict):
            texts, starts = answers["text"], answers.get("answer_start", [-1] * len(answers))
          else:
            texts = [a["text"] for a in answers]
            starts = [a.get("answer_start", -1) for a in answers]
          if texts:
            rows.append({"id": str(qa.get("id", len(rows))), "title": item.get("title", ""),
                         "context": para["context"], "question": qa["question"],
                         "answers": {"text": list(texts), "answer_start": list(starts)}})
    return rows


def squad():
  return SquadJsonSource({"train": _path("squad", "sample.json"),
                          "validation": _path("fixtures", "squad_v2", "dev-v2.0.json")})


class RowRangeSource(src.Source):
  """Splits one in-memory source's rows by index ranges: {"train": (0, 90), ...}."""

  def __init__(self, source, split_to_range, base_split="train"):
    self.source, self.ranges, self.base_split = source, dict(split_to_range), base_split
    self.splits = tuple(self.ranges)

  def _rows(self, split):
    self._check_split(split)
    start, end = self.ranges[split]
    return self.source.rows(self.base_split)[start:end]

  def get_dataset(self, split):
    rows = self._rows(split)
    return src.rows_to_dataset(rows, list(rows[0]))

  def num_examples(self, split):
    return len(self._rows(split))


class CsvSource(src.InMemorySource):
  """A CSV file with a header; ``columns`` maps feature -> column name."""

  def __init__(self, split_to_files, columns):
    super().__init__(split_to_files)
    self.columns = dict(columns)

  def _parse(self, path):
    csv.field_size_limit(2**31 - 1)
    reader = csv.DictReader(io.StringIO(src._read_text(path)))
    rows = []
    for i, row in enumerate(reader, start=2):
      missing = [c for c in self.columns.values() if not row.get(c)]
      if missing:
        raise src.SourceError(f"{path}: row {i}: missing field(s) {missing}")
      rows.append({f: row[c] for f, c in self.columns.items()})
    return rows


def cnn_dailymail():
  """The first 100 training articles: 90 to train on, 10 held out as our validation split."""
  base = CsvSource({"train": _path("cnn_dailymail", "cnn_dailymail_3.0.0_train_first100.csv")},
                   {"article": "article", "highlights": "highlights"})
  return RowRangeSource(base, {"train": (0, 90), "validation": (90, 100)})


class ParallelLinesSource(src.InMemorySource):
  """Line-aligned files, one per language: {"en": path, "de": path} per split. The WMT14
  sample is Moses-tokenised; ``detokenize`` undoes it (see ``moses_detokenize``)."""

  def __init__(self, split_to_files, detokenize=False):
    super().__init__(split_to_files)
    self.detokenize = detokenize

  def _parse(self, files):
    sides = {lang: src._read_text(path).splitlines() for lang, path in files.items()}
    counts = {lang: len(lines) for lang, lines in sides.items()}
    if len(set(counts.values())) != 1:
      raise src.SourceError(f"parallel files differ in line count: {counts} ({files})")
    langs = list(sides)
    fix = moses_detokenize if self.detokenize else (lambda s: s)
    return [{lang: fix(sides[lang][i]) for lang in langs} for i in range(counts[langs[0]])]

  def rows(self, split):
    self._check_split(split)
    if split not in self._cache:
      self._cache[split] = self._parse(self.split_to_files[split])
    return self._cache[split]


def moses_detokenize(text):
  """Undoes the Moses tokenizer's escapes and spacing (enough for BLEU on detokenised text)."""
  for escaped, char in (("&apos;", "'"), ("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"),
                        ("&gt;", ">"), ("&#91;", "["), ("&#93;", "]"), ("&#124;", "|")):
    text = text.replace(escaped, char)
  text = text.replace(" @-@ ", "-").replace(" @,@ ", ",").replace(" @.@ ", ".")
  import re
  text = re.sub(r" ([.,;:!?%)\]}])", r"\1", text)
  text = re.sub(r"([(\[{$]) ", r"\1", text)
  text = re.sub(r" (n't|'s|'re|'ve|'ll|'d|'m)\b", r"\1", text)
  return text.strip()


def translation():
  """en->de/fr/ro from human translations of software messages (gettext), plus the WMT14
  en-de and WMT16 en-ro samples."""
  out = {}
  for lang in ("de", "fr", "ro"):
    base = src.JsonlSource({"train": _path("wmt", f"gettext_en-{lang}.jsonl")},
                           {"en": "en", lang: lang})
    n = base.num_examples("train")
    out[f"en_{lang}"] = RowRangeSource(base, {"train": (0, n - 100), "validation": (n - 100, n)})
  wmt14 = ParallelLinesSource({"train": {"en": _path("wmt", "ende.en"),
                                         "de": _path("wmt", "ende.de")}}, detokenize=True)
  out["en_de_wmt14"] = RowRangeSource(wmt14, {"train": (0, 1800), "validation": (1800, 2000)})
  wmt16 = {s: _path("wmt", "wmt16_en_ro", f"{f}.json") for s, f in
           (("train", "train"), ("validation", "val"), ("test", "test"))}
  out["en_ro_wmt16"] = src.JsonlSource(wmt16, {"en": "translation/en", "ro": "translation/ro"})
  return out


