"""``python -m t5mtf.evaluation --input=rows.jsonl [--output=metrics.json]``

Each input line: {"task": "glue_cola_local", "prediction": "...", "target": "..."} plus, where the
task needs them, "answers" (list, SQuAD/ReCoRD), "idx" (MultiRC question id) and "label"
(WSC "True"/"False"). Prints every task's metrics and the GLUE / SuperGLUE averages.
"""
import json
import sys

from absl import app, flags

from t5mtf.evaluation import evaluate
from t5mtf import cli  # noqa: E402

flags.DEFINE_string("input", None, "JSONL file of task/prediction/target rows.")
flags.DEFINE_string("output", None, "Optional JSON file for the metrics.")
FLAGS = flags.FLAGS


def _rows(path):
  with open(path, "rb") as f:
    for i, raw in enumerate(f, start=1):
      try:
        line = raw.decode("utf-8")
      except UnicodeDecodeError as e:
        raise SystemExit(f"error: {path}: line {i}: not UTF-8 ({e.reason})") from None
      if line.strip():
        try:
          row = json.loads(line)
        except json.JSONDecodeError as e:
          raise SystemExit(f"{path}: line {i}: invalid JSON ({e.msg})")
        yield row


def main(argv):
  del argv
  if not FLAGS.input:
    raise SystemExit("--input is required")
  if FLAGS.output:
    cli.check_output_file("--output", FLAGS.output)
  results = evaluate.evaluate(list(_rows(FLAGS.input)))
  text = json.dumps(results, indent=2, sort_keys=True)
  print(text)
  if FLAGS.output:
    from t5mtf import atomic
    atomic.write_text(FLAGS.output, text + "\n")


if __name__ == "__main__":
  app.run(cli.guarded(main))
