"""C4 cleaning: each rule on small pages written for it (generated text, said so per test), WET
reading on real Common Crawl files, and equivalence with the TFDS reference on real pages."""
import gzip
import io
import json
import os

import apache_beam as beam
import pytest

from t5mtf.data import sources
from t5mtf.data.c4 import __main__ as c4_cli
from t5mtf.data.c4 import pipeline, rules, wet

SHARED_WET = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                          "c4", "whirlwind.warc.wet.gz")
REAL_DOCS = ["data/c4/cc_en_head-0091.jsonl", "data/c4/provided_documents_000.json.gz",
             "data/c4/c4-train.00000-of-01024.json.gz"]
GOOD = "This line has more than five words and ends well."


def write_wet(path, pages):
  """Wraps (url, date, text) triples as WET conversion records (warcio)."""
  from warcio.warcwriter import WARCWriter
  with open(path, "wb") as f:
    writer = WARCWriter(f, gzip=True)
    for url, date, text in pages:
      record = writer.create_warc_record(
          url, "conversion", payload=io.BytesIO(text.encode("utf-8")),
          warc_headers_dict={"WARC-Date": date, "Content-Type": "text/plain"})
      writer.write_record(record)


def real_documents():
  out = []
  for path in REAL_DOCS:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
      for line in f:
        obj = json.loads(line)
        out.append((obj.get("url") or obj["id"], obj.get("timestamp") or "2020-01-01T00:00:00Z",
                    obj["text"]))
  return out


# -- rules, on generated lines ---------------------------------------------------------------------


@pytest.mark.parametrize("line,kept", [
    (GOOD, True),
    ("Too short a line.", False),                                      # < 5 words
    ("This line has five words but no end mark", False),
    ("This line has five words and trails off...", False),             # ellipsis
    ("Please enable JavaScript to view this page now.", False),
    ("By using this site you agree to our privacy policy today.", False),
    ("This line has a word " + "x" * 1001 + " that is far too long.", False),
    ('He said that this line ends with a quote."', True),
])
def test_line_rules(line, kept):
  """Generated lines, one per rule; each page has three good lines besides it."""
  text = rules.clean_text("\n".join([GOOD, GOOD + " Two.", GOOD + " Three.", line]))
  assert (line in text.split("\n")) == kept


def test_citation_markers_are_removed():
  text = rules.clean_text("\n".join([GOOD] * 2 + ["Paris is the capital of France.[1] It is big[edit]."]))
  assert "Paris is the capital of France. It is big." in text


@pytest.mark.parametrize("bad", ["Lorem ipsum dolor sit amet, consectetur adipiscing.",
                                 "The page shows code { like this } and it ends."])
def test_page_rules_drop_the_page(bad):
  assert rules.clean_text("\n".join([GOOD] * 3 + [bad])) is None


def test_sentence_minimum_and_paper_rules():
  two = "\n".join([GOOD, "Another line that has enough words in it."])
  assert rules.clean_text(two) is None
  one_line_three_sentences = "First sentence is here now. Second one is here too. Third one ends."
  assert rules.clean_text(one_line_three_sentences) == one_line_three_sentences
  assert rules.clean_text("\n".join(["Just three words."] * 3)) is None
  assert rules.clean_text("\n".join(["Just three words."] * 5), rules.Rules.paper()) is not None


def test_badwords_flanked_by_non_word_characters():
  regex = rules.badwords_regex(rules.read_lines(pipeline.default_badwords_file()))
  assert regex.search("this has anal in it.")
  assert not regex.search("an analysis of the canal.")


# -- reading ---------------------------------------------------------------------------------------


def test_reads_real_wet_file():
  pages = list(wet.read_wet(SHARED_WET))
  assert len(pages) == 1
  assert pages[0].url == "https://an.wikipedia.org/wiki/Escopete"
  assert pages[0].normalized_url == "an.wikipedia.org/wiki/Escopete"
  assert "Escopete" in pages[0].text and pages[0].timestamp.startswith("20")


def test_truncated_gzip_and_non_utf8_are_counted_not_fatal(tmp_path, caplog):
  path = tmp_path / "pages.wet.gz"
  write_wet(path, [("http://a.example/1", "2020-01-01T00:00:00Z", GOOD),
                   ("http://a.example/2", "2020-01-01T00:00:00Z", GOOD)])
  data = path.read_bytes()
  counts = {}
  count = lambda name, n=1: counts.__setitem__(name, counts.get(name, 0) + n)

  def seen():  # A cut shows as a short record, or (gzip's own check) a broken file.
    return counts.get("pages:truncated", 0) + counts.get("wet-files:broken", 0)
  for cut in (20, 60, 120):  # Inside the last record's gzip trailer, payload, headers.
    (tmp_path / "cut.wet.gz").write_bytes(data[:len(data) - cut])
    before = seen()
    pages = list(wet.read_wet(str(tmp_path / "cut.wet.gz"), count))
    assert [p.text for p in pages] in ([GOOD], [GOOD, GOOD]), "never a partial page"
    assert seen() > before, f"a gzip stream cut {cut} bytes short went uncounted"
  assert "cut.wet.gz" in caplog.text
  from warcio.warcwriter import WARCWriter
  with open(tmp_path / "latin1.wet.gz", "wb") as f:
    w = WARCWriter(f, gzip=True)
    w.write_record(w.create_warc_record("http://b.example/", "conversion",
                                        payload=io.BytesIO("café".encode("latin-1")),
                                        warc_headers_dict={"WARC-Date": "2020"}))
  assert list(wet.read_wet(str(tmp_path / "latin1.wet.gz"), count)) == []
  assert counts["pages:not_utf8"] == 1


# -- equivalence with the released C4 code -----------------------------------------------------------


def reference_pipeline(wet_files, badwords, out_prefix):
  """TFDS's c4_utils composed as its c4 builder composes them for `en` (no downloads)."""
  from tensorflow_datasets.text import c4_utils
  with beam.Pipeline() as p:
    pages = (p | beam.Create(wet_files) | beam.FlatMap(c4_utils.split_wet_file)
             | beam.Filter(c4_utils.is_valid_length)
             | beam.Map(lambda x: (x.normalized_url, x))
             | beam.CombinePerKey(c4_utils.select_newest_page) | beam.Values()
             | beam.FlatMap(c4_utils.get_clean_page_fn()))
    pages = c4_utils.remove_duplicate_text(pages)
    pages = (pages | beam.FlatMap(c4_utils.detect_english)
             | beam.Filter(c4_utils.get_badwords_filter_fn({"en": badwords}, 1.0)))
    _ = (pages | beam.Map(lambda x: json.dumps([x.url, x.text]))
         | beam.io.WriteToText(out_prefix, num_shards=1))
  with open(out_prefix + "-00000-of-00001") as f:
    return dict(json.loads(x) for x in f)


@pytest.mark.slow
def test_identical_to_tfds_reference_on_real_pages(tmp_path, monkeypatch):
  import punkt
  from tensorflow_datasets.text import c4_utils
  # NLTK would download punkt; the offline package ships the same English parameters.
  monkeypatch.setattr(c4_utils, "_SENTENCE_TOKENIZER", punkt.tokenizer_for("english"))
  docs = real_documents()
  # The same real page under a second URL and a re-crawl of one URL exercise line dedup and
  # newest-page selection.
  docs.append(("https://mirror.example.org/copy", "2020-02-01T00:00:00Z", docs[0][2]))
  docs.append((docs[1][0], "2030-01-01T00:00:00Z", docs[1][2] + "\nA later crawl adds this "
               "sentence to the page."))
  wet_path = str(tmp_path / "docs.wet.gz")
  write_wet(wet_path, docs)
  files = [wet_path, os.path.abspath(SHARED_WET)]
  badwords = rules.read_lines(pipeline.default_badwords_file())
  expected = reference_pipeline(files, badwords, str(tmp_path / "reference"))
  out_dir = tmp_path / "out"
  pipeline.run(files, str(out_dir), pipeline.Options(), jsonl=True)
  ours = {}
  for name in os.listdir(out_dir):
    if name.endswith(".jsonl"):
      for line in open(out_dir / name, encoding="utf-8"):
        row = json.loads(line)
        ours[row["url"]] = row["text"]
  assert len(expected) >= 15
  assert ours == expected


# -- the command and its output ---------------------------------------------------------------------


def test_cli_writes_what_a_task_source_reads(tmp_path, capsys):
  wet_path = tmp_path / "docs.wet.gz"
  write_wet(wet_path, real_documents()[:8])
  out = tmp_path / "c4"
  c4_cli.main([f"--input={wet_path}", f"--output_dir={out}", "--num_shards=2"])
  printed = capsys.readouterr().out
  assert "pages:read: 8" in printed and "pages:passed_badwords" in printed
  src = sources.TFRecordSource({"train": str(out / "c4-train.tfrecord-*")}, ("text", "url"))
  rows = list(src.get_dataset("train").as_numpy_iterator())
  assert rows and all(r["text"] for r in rows)


def test_failed_run_leaves_no_output(tmp_path):
  with pytest.raises(SystemExit, match="realnewslike needs --realnews_domains"):
    c4_cli.main([f"--input={SHARED_WET}", f"--output_dir={tmp_path / 'o'}",
                 "--variant=realnewslike"])
  assert not (tmp_path / "o").exists()
  assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]


def test_variants(tmp_path):
  docs = real_documents()[:10]
  wet_path = str(tmp_path / "d.wet.gz")
  write_wet(wet_path, docs)

  def run(name, **kw):
    d = tmp_path / name
    pipeline.run([wet_path], str(d), pipeline.Options(**kw), jsonl=True)
    return [json.loads(l) for f in os.listdir(d) if f.endswith(".jsonl")
            for l in open(d / f, encoding="utf-8")]
  clean = run("en")
  noclean = run("noclean", variant="en.noclean")
  assert len(noclean) >= len(clean)
  assert sum(len(r["text"]) for r in noclean) > sum(len(r["text"]) for r in clean)
  keep = wet.normalize_url(docs[0][0])
  urls = tmp_path / "urls.txt"
  urls.write_text(docs[0][0] + "\n")
  assert {wet.normalize_url(r["url"]) for r in run("webtext", variant="webtextlike",
                                                   webtext_urls_file=str(urls))} <= {keep}
  domain, _ = rules.domain_parts(wet.normalize_url(docs[2][0]))
  domains = tmp_path / "domains.json"
  domains.write_text(json.dumps({domain: None}))
  got = run("news", variant="realnewslike", realnews_domains_file=str(domains))
  assert all(rules.domain_parts(wet.normalize_url(r["url"]))[0] == domain for r in got)
  assert len(run("nobad", badwords=False)) >= len(clean)


def test_single_member_gzip_reads_the_same_pages(tmp_path):
  """A WET re-compressed as one gzip member (what `zcat | gzip` gives; TFDS reads it) gives the
  same pages as Common Crawl's per-record members."""
  per_record = tmp_path / "docs.wet.gz"
  write_wet(per_record, real_documents()[:12])
  with gzip.open(per_record, "rb") as f:
    raw = f.read()
  one_member = tmp_path / "one.wet.gz"
  with gzip.open(one_member, "wb") as f:
    f.write(raw)
  a = list(wet.read_wet(str(per_record)))
  b = list(wet.read_wet(str(one_member)))
  assert len(a) == 12 and a == b


def test_a_file_that_is_not_a_wet_is_counted_and_skipped(tmp_path, capsys):
  good = tmp_path / "docs.wet.gz"
  write_wet(good, real_documents()[:8])
  (tmp_path / "notes.wet.gz").write_bytes(gzip.compress(b"these are my notes\nnot a crawl\n"))
  out = tmp_path / "c4"
  c4_cli.main([f"--input={tmp_path}/*.wet.gz", f"--output_dir={out}", "--num_shards=1"])
  printed = capsys.readouterr().out
  assert "wet-files:broken: 1" in printed and "pages:read: 8" in printed
  assert list(out.glob("c4-train.tfrecord-*"))
