"""Trains a SentencePiece vocabulary as the paper did (§3.1.3): a unigram model on a mixture of
10 parts English to 1 part each of German, French and Romanian, with T5's special ids
(pad 0, EOS 1, unk 2, no BOS). The 100 sentinels are added on top at load time (vocab.py).

    python -m t5mtf.data.vocab_train --output=my_vocab --vocab_size=32000 \
        --input=en:data/pretrain/*.txt --input=de:de.txt --input=fr:fr.txt --input=ro:ro.txt \
        [--weights=en:10,de:1,fr:1,ro:1]

Each input file is read as text lines (JSONL lines contribute their ``text`` or the language's
own key). A language's lines are repeated or cut so that its share of characters matches its
weight relative to English.
"""
import argparse
import glob
import io
import json
import os

DEFAULT_WEIGHTS = {"en": 10.0, "de": 1.0, "fr": 1.0, "ro": 1.0}


def read_lines(path, language):
  from t5mtf.data.sources import _read_text
  lines = []
  for line in _read_text(path).splitlines():
    line = line.strip()
    if not line:
      continue
    if path.endswith((".jsonl", ".jsonl.gz")):
      obj = json.loads(line)
      line = obj.get(language) or obj.get("text") or ""
    lines.extend(l.strip() for l in line.splitlines() if l.strip())
  return lines


def mix(lines_by_language, weights):
  """Lines with character shares proportional to ``weights`` (English as the unit)."""
  base = sum(len(l) for l in lines_by_language["en"]) / weights["en"]
  out = []
  for lang, lines in sorted(lines_by_language.items()):
    target = base * weights.get(lang, 1.0)
    total = sum(len(l) for l in lines)
    if not lines or total == 0:
      raise ValueError(f"no text for language {lang!r}")
    chosen, chars, i = [], 0, 0
    while chars < target:
      chosen.append(lines[i % len(lines)])
      chars += len(chosen[-1])
      i += 1
    out.extend(chosen)
  return out


def train(lines, output_prefix, vocab_size=32000, character_coverage=0.9999):
  import sentencepiece as spm
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(lines), model_prefix=output_prefix, vocab_size=vocab_size,
      model_type="unigram", character_coverage=character_coverage, pad_id=0, eos_id=1,
      unk_id=2, bos_id=-1, normalization_rule_name="nmt_nfkc", input_sentence_size=10_000_000,
      shuffle_input_sentence=True, minloglevel=2, hard_vocab_limit=False)
  return output_prefix + ".model"


def parse_inputs(specs):
  by_lang = {}
  for spec in specs:
    if ":" not in spec:
      raise ValueError(f"--input {spec!r} is not LANG:GLOB")
    lang, pattern = spec.split(":", 1)
    files = sorted(glob.glob(pattern))
    if not files:
      raise ValueError(f"--input {spec!r}: no file matches")
    for f in files:
      by_lang.setdefault(lang, []).extend(read_lines(f, lang))
  if "en" not in by_lang:
    raise ValueError("an English input (en:...) is required")
  return by_lang


def parse_weights(spec):
  """``"en:10,de:1"`` -> {"en": 10.0, "de": 1.0}; anything else is named."""
  if not spec:
    return dict(DEFAULT_WEIGHTS)
  out = {}
  for part in spec.split(","):
    lang, sep, value = part.partition(":")
    try:
      weight = float(value)
    except ValueError:
      weight = None
    if not sep or not lang or weight is None or weight < 0:
      raise ValueError(f"--weights={spec!r}: {part!r} is not LANG:WEIGHT (e.g. "
                       "en:10,de:1,fr:1,ro:1)")
    out[lang] = weight
  return out


def main(argv=None):
  p = argparse.ArgumentParser(prog="python -m t5mtf.data.vocab_train")
  p.add_argument("--input", action="append", required=True, help="LANG:GLOB")
  p.add_argument("--output", required=True, help="output prefix (.model and .vocab)")
  p.add_argument("--vocab_size", type=int, default=32000)
  p.add_argument("--weights", default="", help="e.g. en:10,de:1,fr:1,ro:1")
  args = p.parse_args(argv)
  try:
    lines = mix(parse_inputs(args.input), parse_weights(args.weights))
  except ValueError as e:
    raise SystemExit(f"error: {e}")
  path = train(lines, args.output, args.vocab_size)
  print(f"wrote {path} ({len(lines):,} training lines)")


if __name__ == "__main__":
  from t5mtf import cli
  cli.guarded(main)()
