"""C4, the Colossal Clean Crawled Corpus (§2.2, §3.4.1): Common Crawl WET text cleaned by an
Apache Beam pipeline.

- ``wet.py``: reads WET files (warcio) and JSONL documents into pages.
- ``rules.py``: the cleaning rules, each a small pure function with counters.
- ``pipeline.py``: the Beam pipeline (URL dedup, cleaning, line dedup, langdetect, bad words,
  variants of Table 8) and its TFRecord / JSONL output.
- ``__main__.py``: ``python -m t5mtf.data.c4 --input=GLOB --output_dir=DIR --variant=en``.
"""
