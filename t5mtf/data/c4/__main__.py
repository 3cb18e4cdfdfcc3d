"""``python -m t5mtf.data.c4 --input=GLOB --output_dir=DIR --variant=en [Beam options]``

Reads WET files (or JSONL documents), cleans them as C4 was cleaned, writes sharded TFRecord
(``text``, ``url``, ``timestamp``, ...) per split that ``sources.TFRecordSource`` reads, and prints
the counters. Unrecognised flags go to Beam (``--runner=DataflowRunner --project=...``,
``--runner=FlinkRunner``, ``--direct_num_workers=2``, ...). A failed run leaves nothing under
``--output_dir``.
"""
import argparse
import glob
import sys

from t5mtf.data.c4 import pipeline, rules
from t5mtf import cli  # noqa: E402


def main(argv=None):
  p = argparse.ArgumentParser(prog="python -m t5mtf.data.c4")
  p.add_argument("--input", required=True, action="append", help="glob of WET/JSONL files")
  p.add_argument("--output_dir", required=True)
  p.add_argument("--variant", default="en", choices=pipeline.VARIANTS)
  p.add_argument("--no_badwords", action="store_true", help="skip the bad-words filter")
  p.add_argument("--badwords_file", default="")
  p.add_argument("--paper_rules", action="store_true",
                 help="the paper's wording: lines >= 3 words, pages >= 5 sentences")
  p.add_argument("--realnews_domains", default="", help="JSON {domain: subdomains}")
  p.add_argument("--webtext_urls", default="", help="file of URLs, one per line")
  p.add_argument("--num_shards", type=int, default=1, help="per split; 0: the runner chooses")
  p.add_argument("--jsonl", action="store_true", help="also write JSONL")
  args, beam_args = p.parse_known_args(argv)
  if args.num_shards < 0:
    p.error(f"--num_shards={args.num_shards} must be 0 (the runner chooses) or more")
  files = sorted({f for pattern in args.input for f in glob.glob(pattern)})
  if not files:
    raise SystemExit(f"error: no file matches {args.input}")
  try:
    options = pipeline.Options(
        variant=args.variant, badwords=not args.no_badwords, badwords_file=args.badwords_file,
        rules=rules.Rules.paper() if args.paper_rules else rules.Rules(),
        realnews_domains_file=args.realnews_domains, webtext_urls_file=args.webtext_urls)
    counts = pipeline.run(files, args.output_dir, options, beam_args, args.num_shards,
                          args.jsonl)
  except (ValueError, FileExistsError) as e:
    raise SystemExit(f"error: {e}")
  print(f"wrote {args.output_dir}")
  for name in sorted(counts):
    print(f"  {name}: {counts[name]:,}")


if __name__ == "__main__":
  cli.guarded(main)(sys.argv[1:])
