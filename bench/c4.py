"""C4 cleaning speed: our rules against the TFDS reference functions on the same real pages.

    .venv/bin/python bench/c4.py [--repeat 5]

Per page, both sides run the same chain the `en` config runs outside its joins: line and page
rules (sentence counting with the Punkt English model on both sides), then langdetect on the
cleaned text, then the bad-words filter. Prints pages/s per core (one process, one thread) for
each, the ratio, and checks that both kept the same pages with the same text.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from t5mtf.data.c4 import pipeline, rules, wet  # noqa: E402

DOCS = ["data/c4/cc_en_head-0091.jsonl", "data/c4/provided_documents_000.json.gz",
        "data/c4/c4-train.00000-of-01024.json.gz"]


def load_pages():
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  return [p for path in DOCS for p in wet.read_jsonl(os.path.join(root, path))]


def ours(pages, badwords):
  regex = rules.badwords_regex(badwords)
  out = {}
  for p in pages:
    text = rules.clean_text(p.text)
    if text is not None and rules.is_english(text) and not regex.search(text.lower()):
      out[p.url] = text
  return out


def reference(pages, badwords):
  import punkt
  from tensorflow_datasets.text import c4_utils
  c4_utils._SENTENCE_TOKENIZER = punkt.tokenizer_for("english")  # NLTK would download it.
  noop = lambda *a, **k: None
  clean = c4_utils.get_clean_page_fn()
  bad = c4_utils.get_badwords_filter_fn({"en": badwords}, 1.0)
  c4_utils.get_counter_inc_fn = lambda namespace: noop  # No Beam context here.
  out = {}
  for p in pages:
    page = c4_utils.PageFeatures(url=p.url, normalized_url=p.normalized_url, text=p.text,
                                 timestamp=p.timestamp)
    for cleaned in clean(page, counter_inc_fn=noop):
      for english in c4_utils.detect_english(cleaned):
        if bad(english):
          out[english.url] = english.text
  return out


def timed(fn, pages, badwords, repeat):
  start = time.perf_counter()
  for _ in range(repeat):
    result = fn(pages, badwords)
  return result, repeat * len(pages) / (time.perf_counter() - start)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--repeat", type=int, default=5)
  args = ap.parse_args()
  pages = load_pages()
  badwords = rules.read_badwords(pipeline.default_badwords_file())
  ref_out, ref_rate = timed(reference, pages, badwords, args.repeat)
  our_out, our_rate = timed(ours, pages, badwords, args.repeat)
  same = ref_out == our_out
  print(f"pages: {len(pages)} real web documents, kept {len(our_out)}; outputs identical: {same}")
  print(f"TFDS reference: {ref_rate:8.1f} pages/s per core")
  print(f"t5mtf:          {our_rate:8.1f} pages/s per core")
  print(f"ratio:          {our_rate / ref_rate:8.2f}x")
  if not same:
    raise SystemExit("outputs differ")


if __name__ == "__main__":
  main()
