"""Local-file sources for the real task samples shipped in ``data/tasks`` (data/PROVENANCE.md
says where each comes from), yielding the features of the matching TFDS builders; and the
small adapters that bring TFDS's nested features to the same flat form.
"""
import csv
import io
import json

import tensorflow as tf

from t5mtf.data import sources as src
from t5mtf.data.tasks.formats import LIST_SEPARATOR


def _path(*parts):
  return src.data_path("tasks", *parts)


def _splits(folder, train="train.tsv", validation="validation.tsv"):
  return {"train": _path(folder, train), "validation": _path(folder, validation)}


def glue():
  tsv = dict(delimiter="\t", quoting=False)
  binary = {"0", "1"}
  return {
      "cola": src.DelimitedSource(_splits("glue/CoLA"), {"sentence": "x", "label": "y"}, **tsv)
      .with_valid_values(label=binary),
      "sst2": src.DelimitedSource(_splits("glue/SST-2"), {"sentence": "sentence",
                                                          "label": "label"}, **tsv)
      .with_valid_values(label=binary),
      "mrpc": src.DelimitedSource(_splits("glue/MRPC"), {"sentence1": 3, "sentence2": 4,
                                                         "label": 0}, **tsv)
      .with_valid_values(label=binary),
      "stsb": src.DelimitedSource(_splits("glue/STS-B"), {"sentence1": 5, "sentence2": 6,
                                                          "label": 4}, has_header=False, **tsv),
      "rte": src.DelimitedSource(_splits("glue/RTE"), {"sentence1": "sentence1",
                                                       "sentence2": "sentence2",
                                                       "label": "label"}, **tsv)
      .with_valid_values(label={"entailment", "not_entailment"}),
      "wnli": src.DelimitedSource(_splits("glue/WNLI"), {"sentence1": "sentence1",
                                                         "sentence2": "sentence2",
                                                         "label": "label"}, **tsv)
      .with_valid_values(label=binary),
  }


def _fewglue(task):
  return {"train": _path("superglue_fewglue", task, "train.jsonl"),
          "validation": _path("superglue_fewglue", task, "dev32.jsonl")}


def _multirc_rows(obj):
  """One row per (question, answer option), as TFDS super_glue/multirc; ``idx`` numbers the
  question (for the per-question exact match)."""
  rows = []
  passage = obj["passage"]
  for q in passage["questions"]:
    for a in q["answers"]:
      rows.append({"paragraph": passage["text"], "question": q["question"],
                   "answer": a["text"], "label": str(a["label"]),
                   "idx": str(int(obj["idx"]) * 1000 + int(q["idx"]))})
  return rows


def _record_rows(obj):
  """One row per query; entity spans are inclusive [start, end] in the passage."""
  text = obj["passage"]["text"]
  entities = sorted({text[e["start"]:e["end"] + 1] for e in obj["passage"]["entities"]})
  return [{"passage": text, "query": qa["query"],
           "entities": LIST_SEPARATOR.join(entities),
           "answers": LIST_SEPARATOR.join(a["text"] for a in qa["answers"]),
           "idx": str(qa["idx"])} for qa in obj["qas"]]


def _wsc_rows(obj):
  t = obj["target"]
  return [{"text": obj["text"], "span1_text": t["span1_text"], "span2_text": t["span2_text"],
           "span2_index": str(t["span2_index"]), "label": str(obj["label"]),
           "idx": str(obj["idx"])}]


def super_glue():
  booleans = {"true", "false"}
  out = {
      "boolq": src.JsonlSource(_fewglue("BoolQ"), {"passage": "passage", "question": "question",
                                                   "label": "label"})
      .with_valid_values(label=booleans),
      "cb": src.JsonlSource(_fewglue("CB"), {"hypothesis": "hypothesis", "premise": "premise",
                                             "label": "label"})
      .with_valid_values(label={"entailment", "contradiction", "neutral"}),
      "copa": src.JsonlSource(_fewglue("COPA"), {k: k for k in ("choice1", "choice2", "premise",
                                                                "question", "label")})
      .with_valid_values(label={"0", "1"}),
      "rte": src.JsonlSource(_fewglue("RTE"), {"hypothesis": "hypothesis", "premise": "premise",
                                               "label": "label"})
      .with_valid_values(label={"entailment", "not_entailment"}),
      "wic": src.JsonlSource(_fewglue("WiC"), {k: k for k in ("sentence1", "sentence2", "word",
                                                              "label")})
      .with_valid_values(label=booleans),
      "multirc": src.JsonlSource(_fewglue("MultiRC"), row_fn=_multirc_rows),
      "record": src.JsonlSource(_fewglue("ReCoRD"), row_fn=_record_rows),
      "wsc": src.JsonlSource(_fewglue("WSC"), row_fn=_wsc_rows),
  }
  return out


class SquadJsonSource(src.InMemorySource):
  """SQuAD examples from a flat sample (``{"data": [{"question", "context", "answers":
  {"text": [...]}}]}``) or the official nested format (data/paragraphs/qas)."""

  def _parse(self, path):
    try:
      data = json.loads(src._read_text(path))["data"]
    except (json.JSONDecodeError, KeyError) as e:
      raise src.SourceError(f"{path}: not a SQuAD json file ({e})") from None
    rows = []
    for item in data:
      if "paragraphs" in item:
        for para in item["paragraphs"]:
          for qa in para["qas"]:
            answers = [a["text"] for a in qa["answers"]]
            if answers:  # SQuAD 1.1 questions only: v2's unanswerable ones have none.
              rows.append(self._row(qa["question"], para["context"], answers))
      else:
        rows.append(self._row(item["question"], item["context"], item["answers"]["text"]))
    return rows

  @staticmethod
  def _row(question, context, answers):
    return {"question": question, "context": context,
            "answers": LIST_SEPARATOR.join(answers)}


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


# -- TFDS adapters: nested features -> the flat features of the local sources -----------------


def tfds_squad_answers(dataset):
  return dataset.map(lambda ex: {"question": ex["question"], "context": ex["context"],
                                 "answers": ex["answers"]})


def tfds_multirc_ids(dataset):
  return dataset.map(lambda ex: {**{k: ex[k] for k in ("paragraph", "question", "answer",
                                                       "label")},
                                 "idx": ex["idx"]["paragraph"] * 1000 + ex["idx"]["question"]})


def tfds_record_lists(dataset):
  return dataset.map(lambda ex: {
      "passage": ex["passage"], "query": ex["query"],
      "entities": tf.strings.reduce_join(ex["entities"], separator=LIST_SEPARATOR),
      "answers": tf.strings.reduce_join(ex["answers"], separator=LIST_SEPARATOR),
      "idx": ex["idx"]["query"]})


def tfds_wsc_fields(dataset):
  return dataset.map(lambda ex: {
      "text": ex["text"], "span1_text": ex["span1_text"], "span2_text": ex["span2_text"],
      "span2_index": ex["span2_index"], "label": ex["label"], "idx": ex["idx"]})


def tfds_translation_fields(dataset):
  return dataset
