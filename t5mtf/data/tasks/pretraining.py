"""Pre-training tasks (§2.2, §3.1.4): C4 with span corruption, and offline stand-ins.

``c4_v220_span_corruption`` reads the TFDS ``c4/en:2.2.0`` builder, as the paper did (TFDS must
have it prepared). The ``local_*`` tasks read the real English text shipped in ``data/``
(see data/PROVENANCE.md): web pages cleaned as C4 was, Wikipedia, OpenWebText and a novel. Every
objective of Table 3 has a task, ``{corpus}_{objective}``.
"""
import functools

from t5mtf.data import objectives
from t5mtf.data import preprocessors as prep
from t5mtf.data import registry
from t5mtf.data import sources as src

DEFAULT_INPUTS_LENGTH = 512


def local_text_source():
  """The shipped English text as one source of ``{"text"}`` documents (or lines)."""
  return src.ConcatSource([
      src.JsonlSource({"train": [src.data_path("c4", "c4-train.00000-of-01024.json.gz"),
                                 src.data_path("c4", "provided_documents_000.json.gz"),
                                 src.data_path("c4", "cc_en_head-0091.jsonl")]},
                      {"text": "text"}),
      src.TextLineSource({"train": [src.data_path("pretrain", "wiki_00.txt"),
                                    src.data_path("pretrain", "openwebtext", "*.txt"),
                                    src.data_path("pretrain", "botchan.txt")]}),
  ])


def _web_pages():
  return src.JsonlSource({"train": [src.data_path("c4", "c4-train.00000-of-01024.json.gz"),
                                    src.data_path("c4", "provided_documents_000.json.gz"),
                                    src.data_path("c4", "cc_en_head-0091.jsonl")]},
                         {"text": "text"})


class C4CleanedSource(src.Source):
  """Documents passed through C4's page and line rules (§2.2, ``t5mtf.data.c4.rules``)."""

  def __init__(self, source):
    self.source, self.splits = source, source.splits

  def rows(self, split):
    from t5mtf.data.c4 import rules
    cleaned = (rules.clean_text(r["text"]) for r in self.source.rows(split))
    return [{"text": t} for t in cleaned if t]

  def get_dataset(self, split):
    return src.rows_to_dataset(self.rows(split), ["text"])

  def num_examples(self, split):
    return len(self.rows(split))


def _lines(*parts):
  return src.TextLineSource({"train": [src.data_path("pretrain", *p) for p in parts]})


# Table 8's pre-training data sets -> the shipped real text standing in for each at tiny scale
# (a few thousand to ~90,000 tokens each; RealNews-like has no stand-in).
STAND_IN_CORPORA = {
    "local_c4": lambda: C4CleanedSource(_web_pages()),  # C4: web pages, cleaned as C4 was.
    "local_web_unfiltered": _web_pages,  # C4 unfiltered: the same pages, not cleaned.
    "local_webtext": lambda: _lines(("openwebtext", "*.txt")),  # WebText-like: OpenWebText.
    "local_wiki": lambda: _lines(("wiki_00.txt",)),  # Wikipedia.
    "local_wiki_books": lambda: _lines(("wiki_00.txt",), ("botchan.txt",)),  # Wikipedia + TBC.
}


def c4_source():
  return src.TfdsSource("c4/en:2.2.0", splits=("train", "validation"))


# Table 8's other pre-training data sets as TFDS builds them (the paper's variants of C4 and
# Wikipedia; the Toronto Books Corpus has no public builder).
TABLE8_TFDS = {
    "c4_noclean_v220": "c4/en.noclean:2.2.0",
    "c4_realnewslike_v220": "c4/realnewslike:2.2.0",
    "c4_webtextlike_v220": "c4/webtextlike:2.2.0",
    "wikipedia_20190301": "wikipedia/20190301.en:1.0.0",
}


def split_for_objective(dataset, sequence_length, output_features,
                        objective_name="span_corruption", noise_density=0.15,
                        mean_noise_span_length=3.0):
  """Tokenizes the documents and cuts the token stream into pieces sized so that the objective's
  inputs fit ``sequence_length["inputs"]`` (568 raw tokens -> 512 inputs / 114 targets for span
  corruption)."""
  inputs_length = (sequence_length or {}).get("inputs", DEFAULT_INPUTS_LENGTH)
  if objective_name == "span_corruption":  # The helper already leaves room for EOS.
    length, _ = objectives.random_spans_helper(inputs_length, noise_density,
                                               mean_noise_span_length)
  elif objective_name == "lm":
    length = (sequence_length or {}).get("targets", inputs_length) - 1
  else:
    length = inputs_length - 1
  return prep.tokenize_and_split(dataset, output_features["targets"].vocabulary, length)


def pretraining_preprocessors(objective_name="span_corruption", **objective_kwargs):
  split_kwargs = {k: v for k, v in objective_kwargs.items()
                  if k in ("noise_density", "mean_noise_span_length")}
  return [
      functools.partial(split_for_objective, objective_name=objective_name, **split_kwargs),
      objectives.get_objective(objective_name, **objective_kwargs),
  ]


CORRUPTION_RATES = (0.10, 0.15, 0.25, 0.50)  # Table 6.
SPAN_LENGTHS = (2, 3, 5, 10)  # Table 7.


def register():
  for corpus, source_fn in (("local", local_text_source), ("c4_v220", c4_source),
                            ("local_c4", STAND_IN_CORPORA["local_c4"])):
    for name in objectives.OBJECTIVES:
      features = registry.default_output_features()
      if name == "lm":
        features = {"targets": features["targets"]}
      registry.add_task(registry.Task(
          f"{corpus}_{name}", source_fn(), pretraining_preprocessors(name),
          output_features=features))
    # Tables 6 and 7: every corruption rate with i.i.d. spans and with random spans of each
    # mean length, e.g. local_span_corruption_r25_s3, local_iid_replace_spans_r50.
    for rate in CORRUPTION_RATES:
      registry.add_task(registry.Task(
          f"{corpus}_iid_replace_spans_r{round(rate * 100)}", source_fn(),
          pretraining_preprocessors("iid_replace_spans", noise_density=rate)))
      for span in SPAN_LENGTHS:
        registry.add_task(registry.Task(
            f"{corpus}_span_corruption_r{round(rate * 100)}_s{span}", source_fn(),
            pretraining_preprocessors("span_corruption", noise_density=rate,
                                      mean_noise_span_length=float(span))))
  for corpus, source_fn in STAND_IN_CORPORA.items():
    if corpus != "local_c4":  # Table 8 uses the baseline objective only.
      registry.add_task(registry.Task(f"{corpus}_iid_replace_spans", source_fn(),
                                      pretraining_preprocessors("iid_replace_spans")))
  for corpus, builder in TABLE8_TFDS.items():
    registry.add_task(registry.Task(f"{corpus}_iid_replace_spans",
                                    src.TfdsSource(builder, splits=("train",)),
                                    pretraining_preprocessors("iid_replace_spans")))
