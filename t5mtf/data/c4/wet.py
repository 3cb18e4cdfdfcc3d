"""Pages from Common Crawl WET files (WARC/1.0 ``conversion`` records, read with warcio) and
from JSONL documents.

A page's text is its non-empty lines, stripped, without lines that look like WARC/HTTP metadata
(``WARC``, ``CONTENT-``, ``Content-`` prefixes), joined by newlines: exactly what the released
C4 builder took from a WET record. Broken input is counted and skipped with a warning naming the
file; the pipeline goes on.
"""
import dataclasses
import gzip
import json
import re
import zlib

from absl import logging

METADATA_PREFIXES = ("WARC", "CONTENT-", "Content-")


@dataclasses.dataclass
class Page:
  url: str = ""
  normalized_url: str = ""
  text: str = ""
  timestamp: str = ""
  content_length: str = ""
  content_type: str = ""
  language: str = ""


def normalize_url(url):
  """Drops the scheme, ``www.``, tracking queries and trailing slashes (C4's URL key)."""
  url = re.sub(r"https?://(www\.)?", "", url)
  url = re.sub(r"\?(utm_|ref|feed).*", "", url)
  return url.rstrip("/")


def page_text(payload):
  lines = (line.strip() for line in payload.splitlines())
  return "\n".join(l for l in lines if l and not l.startswith(METADATA_PREFIXES))


def make_page(url, text, timestamp, content_length="", content_type="text/plain"):
  return Page(url=url, normalized_url=normalize_url(url), text=text, timestamp=timestamp,
              content_length=content_length, content_type=content_type)


def read_wet(path, count=lambda name, n=1: None):
  """Yields a Page per usable record of a WET file, plain or gzipped: per record, as Common
  Crawl writes it, or as one gzip member (what re-compressing a WET gives), which TFDS's
  reader also accepts; the decompressed stream is read either way. A file that is not a WET,
  or whose gzip stream is cut short, is counted (``wet-files:broken``) with a warning naming
  it; the pages read before the break are kept."""
  from warcio.archiveiterator import ArchiveIterator
  from warcio.exceptions import ArchiveLoadFailed
  count("wet-files")
  done = 0  # Records read per gzip member before warcio found the file is one member.
  try:
    try:
      with open(path, "rb") as f:
        for record in ArchiveIterator(f):
          done += 1
          page = _record_to_page(record, path, count)
          if page is not None:
            yield page
    except ArchiveLoadFailed as e:
      if "recompress" not in str(e):  # Not the one-member case: not a WET at all.
        raise
      with gzip.open(path, "rb") as f:  # One gzip member: read the decompressed stream.
        for i, record in enumerate(ArchiveIterator(f)):
          page = _record_to_page(record, path, count) if i >= done else None
          if page is not None:
            yield page
    _check_gzip_end(path)
  except (EOFError, OSError, zlib.error, ValueError, ArchiveLoadFailed) as e:
    count("wet-files:broken")
    reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
    logging.warning("%s: not a readable WET file, or broken after its last good record (%s); "
                    "skipped from there, pages before it are kept", path, reason)


def _check_gzip_end(path):
  """Raises an OSError if a gzipped file's stream stops before its end-of-stream marker (an
  interrupted download): warcio's decompression ends there quietly, keeping the records before
  the cut. A second pass, through Python's gzip, which checks the end (and every member's CRC)."""
  with open(path, "rb") as f:
    if f.read(2) != b"\x1f\x8b":
      return
  try:
    with gzip.open(path, "rb") as f:
      while f.read(1 << 20):
        pass
  except EOFError as e:
    raise OSError(f"gzip stream cut short: {e}") from None


def _record_to_page(record, path, count):
  headers = record.rec_headers
  url = (headers.get_header("WARC-Target-URI") or "").strip()
  timestamp = (headers.get_header("WARC-Date") or "").strip()
  raw = record.content_stream().read()
  declared = (headers.get_header("Content-Length") or "").strip()
  if declared.isdigit() and len(raw) < int(declared):
    count("pages:truncated")
    logging.warning("%s: skipped the truncated record of %s", path, url or "(no url)")
    return None
  try:
    payload = raw.decode("utf-8")
  except UnicodeDecodeError:
    count("pages:not_utf8")
    logging.warning("%s: skipped the record of %s: not UTF-8", path, url or "(no url)")
    return None
  text = page_text(payload)
  if not url:
    count("pages:no_url")
  elif not text:
    count("pages:no_content")
  elif not timestamp:
    count("pages:no_timestamp")
  else:
    count("pages:read")
    return make_page(url, text, timestamp, (headers.get_header("Content-Length") or "").strip(),
                     (headers.get_header("Content-Type") or "").strip())
  return None


def read_jsonl(path, count=lambda name, n=1: None):
  """Yields a Page per JSON line with ``text`` and a URL (``url`` or ``id``); .gz is read too."""
  opener = gzip.open if path.endswith(".gz") else open
  count("jsonl-files")
  try:
    with opener(path, "rt", encoding="utf-8") as f:
      for i, line in enumerate(f, start=1):
        if not line.strip():
          continue
        try:
          obj = json.loads(line)
          url = obj.get("url") or obj.get("id") or ""
          text = page_text(obj["text"])
        except (json.JSONDecodeError, KeyError, AttributeError, TypeError):
          count("pages:bad_json")
          logging.warning("%s: line %d: not a JSON document with text; skipped", path, i)
          continue
        timestamp = obj.get("timestamp") or obj.get("created") or "unknown"
        if url and text:
          count("pages:read")
          yield make_page(url, text, str(timestamp))
        else:
          count("pages:no_content")
  except (EOFError, OSError, zlib.error, UnicodeDecodeError) as e:
    count("jsonl-files:broken")
    logging.warning("%s: stopped reading (%s); pages before it are kept", path, e)


def read_pages(path, count=lambda name, n=1: None):
  if re.search(r"\.jsonl?(\.gz)?$", path):
    return read_jsonl(path, count)
  return read_wet(path, count)
