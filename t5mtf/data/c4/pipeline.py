"""The C4 Beam pipeline: runs on DirectRunner locally and on Dataflow, Flink or Spark through the
standard Beam pipeline options, as the released C4 was built.

    files -> pages -> length filter -> [RealNews domains] -> newest page per URL
          -> [WebText URLs] -> [clean] -> [dedupe lines] -> English -> [bad words]
          -> split by URL hash (0.1% validation) -> TFRecord (+ JSONL) shards

Variants (Table 8): ``en`` (everything), ``en.noclean`` (langdetect only), ``realnewslike``
(``en`` limited to a domain list), ``webtextlike`` (``en`` limited to a URL list); ``badwords``
can be switched off for ``en``.
"""
import dataclasses
import json
import os
import shutil

import apache_beam as beam
from apache_beam.metrics import Metrics

from t5mtf.data.c4 import rules as rules_lib
from t5mtf.data.c4 import wet

NAMESPACE = "c4"
VARIANTS = ("en", "en.noclean", "realnewslike", "webtextlike")


@dataclasses.dataclass(frozen=True)
class Options:
  variant: str = "en"
  badwords: bool = True
  badwords_file: str = ""
  rules: rules_lib.Rules = rules_lib.Rules()
  realnews_domains_file: str = ""
  webtext_urls_file: str = ""

  @property
  def clean(self):
    return self.variant != "en.noclean"

  def __post_init__(self):
    if self.variant not in VARIANTS:
      raise ValueError(f"unknown C4 variant {self.variant!r}; one of {list(VARIANTS)}")
    if self.variant == "realnewslike" and not self.realnews_domains_file:
      raise ValueError("variant realnewslike needs --realnews_domains (a JSON file of domains)")
    if self.variant == "webtextlike" and not self.webtext_urls_file:
      raise ValueError("variant webtextlike needs --webtext_urls (a file of URLs, one a line)")


def counter(name, n=1):
  Metrics.counter(NAMESPACE, name).inc(n)


# -- steps (plain functions, testable without Beam) ----------------------------------------------


def read_file(path):
  yield from wet.read_pages(path, counter)


def valid_length(page):
  ok = len(page.text) <= rules_lib.MAX_PAGE_CHARS
  counter("pages:passed_length" if ok else "pages-filtered:too_long")
  return ok


def newest(pages):
  """Of the pages with one normalised URL, the one with the latest timestamp (first on ties)."""
  pages = list(pages)
  best = pages[0]
  for p in pages[1:]:
    if p.timestamp > best.timestamp:
      best = p
  if len(pages) > 1:
    counter("pages-filtered:duplicate_url", len(pages) - 1)
  return best


def clean(page, rules):
  text = rules_lib.clean_text(page.text, rules, counter)
  if text is not None:
    counter("pages:passed_clean")
    yield dataclasses.replace(page, text=text)


def line_url_pairs(page):
  for line in page.text.split("\n"):
    yield rules_lib.line_hash(line), page.url


def smallest_url_hash(urls):
  """One URL per line: the one whose md5 is smallest (deterministic, domain-unbiased)."""
  return min(urls, key=rules_lib.url_hash)


def keep_selected(joined, min_sentences):
  url, groups = joined
  pages, lines = list(groups["pages"]), set(groups["lines"])
  if len(pages) != 1:
    raise ValueError(f"expected one page for {url}, got {len(pages)}")
  text = rules_lib.keep_selected_lines(pages[0].text, lines, min_sentences, counter)
  if text is not None:
    counter("pages:passed_dedup")
    yield dataclasses.replace(pages[0], text=text)


def english(page):
  if rules_lib.is_english(page.text):
    counter("pages:passed_langdetect")
    yield dataclasses.replace(page, language="en")
  else:
    counter("pages-filtered:not_english")


class BadWordsFilter(beam.DoFn):
  def __init__(self, words):
    self.words = list(words)

  def setup(self):
    self.regex = rules_lib.badwords_regex(self.words)

  def process(self, page):
    if self.regex.search(page.text.lower()):
      counter("pages-filtered:badwords")
    else:
      counter("pages:passed_badwords")
      yield page


def is_validation(page):
  """C4's split: the md5 of the normalised URL modulo 1000 == 0 is validation (0.1%)."""
  return int(rules_lib.url_hash(page.normalized_url), 16) % 1000 == 0


def to_example(page):
  import tensorflow as tf
  feats = {"url": page.url, "text": page.text, "timestamp": page.timestamp,
           "content-type": page.content_type, "content-length": page.content_length}
  return tf.train.Example(features=tf.train.Features(feature={
      k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode("utf-8")]))
      for k, v in feats.items()})).SerializeToString()


def to_json(page):
  return json.dumps({"url": page.url, "text": page.text, "timestamp": page.timestamp},
                    ensure_ascii=False)


# -- the pipeline ----------------------------------------------------------------------------------


def build(root, files, options):
  """files: list of paths -> PCollection of cleaned Pages."""
  pages = (root | "files" >> beam.Create(sorted(files))
           | "read" >> beam.FlatMap(read_file)
           | "length" >> beam.Filter(valid_length))
  if options.variant == "realnewslike":
    domains = _read_side_file(options.realnews_domains_file, "--realnews_domains", _json_object)
    pages |= "realnews" >> beam.Filter(
        lambda p: rules_lib.is_realnews_domain(p.normalized_url, domains))
  pages = (pages | "by_url" >> beam.Map(lambda p: (p.normalized_url, p))
           | "newest" >> beam.CombinePerKey(newest) | "pages" >> beam.Values())
  if options.variant == "webtextlike":
    urls = {wet.normalize_url(u) for u in _read_side_file(
        options.webtext_urls_file, "--webtext_urls", rules_lib.read_lines)}
    pages |= "webtext" >> beam.Filter(lambda p: p.normalized_url in urls)
  if options.clean:
    pages |= "clean" >> beam.FlatMap(clean, options.rules)
    pages = dedupe_lines(pages, options.rules.min_sentences)
  pages |= "english" >> beam.FlatMap(english)
  if options.clean and options.badwords:
    path = options.badwords_file or default_badwords_file()
    words = _read_side_file(path, "--badwords_file", rules_lib.read_lines)
    pages |= "badwords" >> beam.ParDo(BadWordsFilter(words))
  return pages


def _read_side_file(path, flag, read):
  """read(path), or a ValueError naming the flag and the file (read before the pipeline runs)."""
  try:
    return read(path)
  except (OSError, UnicodeDecodeError, ValueError) as e:  # JSONDecodeError is a ValueError.
    reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    raise ValueError(f"{flag}={path} cannot be read: {reason}") from None


def _json_object(path):
  with open(path, encoding="utf-8") as f:
    obj = json.load(f)
  if not isinstance(obj, dict):
    raise ValueError(f"expected a JSON object {{domain: [subdomains]}}, got {type(obj).__name__}")
  return obj


def dedupe_lines(pages, min_sentences):
  """Each line (lower-cased) is kept in one page only, chosen by URL hash (released C4)."""
  selected = (pages | "line_urls" >> beam.FlatMap(line_url_pairs)
              | "one_url" >> beam.CombinePerKey(smallest_url_hash)
              | "url_lines" >> beam.Map(lambda kv: (kv[1], kv[0])))
  keyed = pages | "page_by_url" >> beam.Map(lambda p: (p.url, p))
  return ({"pages": keyed, "lines": selected} | "join" >> beam.CoGroupByKey()
          | "keep" >> beam.FlatMap(keep_selected, min_sentences))


def default_badwords_file():
  from t5mtf.data.sources import data_path
  return data_path("c4", "en_c4_pinned_25e679f0.txt")


def run(files, output_dir, options, beam_args=(), num_shards=1, jsonl=False):
  """Runs the pipeline into ``output_dir`` atomically; returns {counter: value}."""
  from apache_beam.options.pipeline_options import PipelineOptions
  if not files:
    raise ValueError("no input files")
  if os.path.exists(output_dir) and os.listdir(output_dir):
    raise FileExistsError(f"{output_dir} exists and is not empty")
  from t5mtf import atomic
  staging = atomic.staging_dir(output_dir.rstrip("/"))  # A killed run's leftovers go first.
  pipeline_options = PipelineOptions(list(beam_args))
  try:
    pipeline = beam.Pipeline(options=pipeline_options)
    pages = build(pipeline, files, options)
    write(pages, staging, num_shards, jsonl)
    result = pipeline.run()
    result.wait_until_finish()
    counts = counters(result)
    broken = counts.get("wet-files:broken", 0) + counts.get("jsonl-files:broken", 0)
    if broken and not counts.get("pages:read", 0):
      raise ValueError(f"no page could be read: {broken} of {len(files)} input file(s) are not "
                       "readable WET or JSONL (see the warnings); nothing written")
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  if os.path.isdir(output_dir):
    os.rmdir(output_dir)
  os.replace(staging, output_dir)
  return counts


def write(pages, output_dir, num_shards, jsonl):
  """Sharded TFRecord per split (and JSONL): ``c4-train.tfrecord-00000-of-00001``."""
  splits = pages | "split" >> beam.Partition(lambda p, n: int(is_validation(p)), 2)
  for name, part in zip(("train", "validation"), splits):
    (part | f"example_{name}" >> beam.Map(to_example)
     | f"tfrecord_{name}" >> beam.io.WriteToTFRecord(
         os.path.join(output_dir, f"c4-{name}.tfrecord"), num_shards=num_shards))
    if jsonl:
      (part | f"json_{name}" >> beam.Map(to_json)
       | f"jsonl_{name}" >> beam.io.WriteToText(os.path.join(output_dir, f"c4-{name}"),
                                                file_name_suffix=".jsonl",
                                                num_shards=num_shards))


def counters(result):
  from apache_beam.metrics.metric import MetricsFilter
  query = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
  return {c.key.metric.name: c.committed for c in query["counters"]}
