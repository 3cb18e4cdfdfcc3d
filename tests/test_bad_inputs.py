"""Bad input across every command line, run as a user runs it (a subprocess each): the run
exits non-zero, prints no traceback, its last stderr line names the bad thing, and it writes
nothing it was asked to write. The table (case -> what the user sees) is in the README.

Files made here (empty, binary, non-UTF-8, truncated checkpoints) are generated test data.
"""
import gzip
import json
import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

TINY = ["--gin_file=models/tiny.gin", "--gin_param=RunSettings.inputs_length=32",
        "--gin_param=RunSettings.targets_length=8", "--gin_param=RunSettings.batch_size=4",
        "--gin_param=ModelConfig.d_model=32", "--gin_param=ModelConfig.d_ff=64",
        "--gin_param=ModelConfig.num_encoder_layers=1",
        "--gin_param=ModelConfig.num_decoder_layers=1",
        "--gin_param=RunSettings.mixture_or_task_name='local_span_corruption'"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
  d = tmp_path_factory.mktemp("bad")
  model = d / "model"
  subprocess.run([sys.executable, "-m", "t5mtf.main", f"--model_dir={model}", *TINY,
                  "--gin_param=RunSettings.train_steps=4",
                  "--gin_param=RunSettings.save_checkpoints_steps=2"],
                 check=True, capture_output=True, timeout=600)
  broken = d / "broken"
  shutil.copytree(model, broken)
  data = sorted(broken.glob("model.ckpt-4.data-*"), key=os.path.getsize)[-1]
  os.truncate(data, os.path.getsize(data) // 2)
  for name in ("nostate", "junkstate"):  # Checkpoints whose 'checkpoint' file is lost.
    shutil.copytree(model, d / name)
  os.remove(d / "nostate" / "checkpoint")
  (d / "junkstate" / "checkpoint").write_text("junk{")
  (d / "empty.txt").write_text("")
  (d / "binary.gin").write_bytes(b"\x00\x01\x02\xff\xfe")
  (d / "open.gin").write_text("RunSettings.train_steps = (\n")
  (d / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
  (d / "notab.tsv").write_text("an input without its target\n")
  (d / "pairs.tsv").write_text("translate English to German: Hello.\tHallo.\n")
  (d / "in.txt").write_text("translate English to German: Hello.\n")
  (d / "bad.jsonl").write_text('{"task": "glue_sst2_local", "prediction": "positive"\n')
  (d / "nokey.jsonl").write_text('{"task": "glue_sst2_local", "prediction": "positive"}\n')
  (d / "number.jsonl").write_text(
      '{"task": "glue_sst2_local", "prediction": 1, "target": "positive"}\n')
  (d / "stsb_one.jsonl").write_text(
      '{"task": "glue_stsb_local", "prediction": "2.4", "target": "3.0"}\n')
  (d / "latin1.jsonl").write_bytes('{"task": "caf\xe9"}\n'.encode("latin-1"))
  (d / "unknown.jsonl").write_text(
      '{"task": "glue_sst_local", "prediction": "a", "target": "b"}\n')
  (d / "mixture.jsonl").write_text(
      '{"task": "glue_local", "prediction": "a", "target": "b"}\n')
  (d / "notmsgpack").write_bytes(b"this is not a flax checkpoint")
  (d / "hf_noconfig").mkdir()
  (d / "full").mkdir()
  (d / "full" / "x").write_text("already here")
  (d / "page.wet.gz").write_bytes(gzip.compress(b"no warc here\n"))
  (d / "en.txt").write_text("An English line.\n")
  (d / "empty_dir").mkdir()
  return d


def cases(d):
  m, b = d / "model", d / "broken"
  main = lambda *a: ["t5mtf.main", *a]  # noqa: E731
  gp = lambda s: f"--gin_param={s}"  # noqa: E731
  run = lambda *a: main(f"--model_dir={d / 'out'}", *TINY, *a)  # noqa: E731
  on = lambda model_dir, *a: main(f"--model_dir={model_dir}", *TINY, *a)  # noqa: E731
  sst2 = gp("RunSettings.mixture_or_task_name='glue_sst2_local'")
  out = f"--output_file={d / 'out.txt'}"
  return [
      # case, argv, what the last line must say
      ("unknown mode", main("--mode=bogus"), "--mode"),
      ("unexpected argument", main(f"--model_dir={d}", *TINY, "extra"), "unexpected arguments"),
      ("missing gin file", main(f"--model_dir={d}", "--gin_file=nope.gin"),
       "gin file 'nope.gin' not found"),
      ("binary gin file", main(f"--model_dir={d}", f"--gin_file={d / 'binary.gin'}"),
       "binary.gin: UnicodeDecodeError"),
      ("binding typo", run(gp("RunSettings.train_step=5")), "did you mean"),
      ("unknown configurable", run(gp("Foo.bar=1")), "unknown configurable 'Foo'"),
      ("binding without value", run(gp("RunSettings.train_steps")), "has no value"),
      ("unquoted string value", run(gp("RunSettings.mesh_shape=model:2")),
       "not a Python literal"),
      ("batch size 0", run(gp("RunSettings.batch_size=0")), "batch_size=0 must be at least 1"),
      ("negative batch size", run(gp("RunSettings.batch_size=-4")), "batch_size=-4"),
      ("inputs length 0", run(gp("RunSettings.inputs_length=0")), "inputs_length=0"),
      ("negative targets length", run(gp("RunSettings.targets_length=-1")),
       "targets_length=-1"),
      ("train_steps 0", run(gp("RunSettings.train_steps=0")), "train_steps=0"),
      ("checkpoint interval 0", run(gp("RunSettings.save_checkpoints_steps=0")),
       "save_checkpoints_steps=0"),
      ("beam size 0", run(gp("RunSettings.beam_size=0")), "beam_size=0"),
      ("fractional steps", run(gp("RunSettings.train_steps=2.5")), "whole number"),
      ("microbatches not dividing", run(gp("RunSettings.num_microbatches=3"),
                                        gp("RunSettings.train_steps=1")),
       "num_microbatches=3 must divide"),
      ("layout names a missing axis", run(gp("RunSettings.mesh_shape='model:2'"),
                                          gp("RunSettings.layout='heads:modle'")), "'modle'"),
      ("mesh axis no rule uses", run(gp("RunSettings.mesh_shape='x:2'")),
       "mesh axis 'x'"),
      ("dimension not dividing", run(gp("RunSettings.mesh_shape='model:3'")),
       "does not divide over mesh axis model=3"),
      ("unknown packing", run(gp("RunSettings.packing='dense'")), "packing='dense'"),
      ("unknown beam search", run(gp("RunSettings.beam_search='wide'")), "beam_search='wide'"),
      ("unknown trainable", run(gp("RunSettings.trainable='some'")), "trainable='some'"),
      ("unknown activation dtype", run(gp("ModelConfig.activation_dtype='float16'")),
       "activation_dtype='float16'"),
      ("vocab not a multiple of 128", run(gp("ModelConfig.vocab_size=1000")),
       "vocab_size=1000"),
      ("d_model 0", run(gp("ModelConfig.d_model=0")), "d_model must be positive"),
      ("unknown architecture", run(gp("ModelConfig.architecture='rnn'")),
       "architecture='rnn'"),
      ("unknown loss normalization", run(gp("ModelConfig.loss_normalization='sum'")),
       "loss_normalization='sum'"),
      # Values of the wrong type or range, which gin binds as given.
      ("string for a number", run(gp("ModelConfig.d_model='big'")),
       "ModelConfig.d_model='big' must be a whole number"),
      ("number for a task name", run(gp("RunSettings.mixture_or_task_name=123")),
       "must be a string in quotes"),
      ("number for a flag", run(gp("RunSettings.pack=2")), "RunSettings.pack=2 must be True"),
      ("string for a flag", run(gp("ModelConfig.tie_embeddings='no'")),
       "tie_embeddings='no' must be True or False"),
      ("one string for a tuple", run(gp("RunSettings.eval_tasks='glue_sst2_local'")),
       "must be a tuple of strings"),
      ("dropout above 1", run(gp("ModelConfig.dropout_rate=1.5")), "dropout_rate=1.5"),
      ("negative layer count", run(gp("ModelConfig.num_encoder_layers=-1")),
       "num_encoder_layers=-1 must be at least 1"),
      ("negative norm epsilon", run(gp("ModelConfig.layer_norm_epsilon=-1.0")),
       "layer_norm_epsilon=-1.0 must be positive"),
      ("no position buckets", run(gp("ModelConfig.relative_attention_num_buckets=0")),
       "relative_attention_num_buckets=0 must be at least 4"),
      ("mesh axis of size 0", run(gp("RunSettings.mesh_shape='model:0'")),
       "axis model has size 0"),
      ("schedule missing a binding", run(gp("RunSettings.learning_rate_schedule=@triangular")),
       "triangular needs total_steps; bind it, e.g. --gin_param=triangular.total_steps="),
      ("schedule too short to warm up", run(gp("RunSettings.learning_rate_schedule=@triangular"),
                                            gp("triangular.total_steps=5")),
       "leaves no warm-up step"),
      ("unclosed bracket in a binding", run(gp("RunSettings.train_steps=(")),
       "ends inside an unclosed bracket"),
      ("unclosed bracket in a gin file",
       main(f"--model_dir={d}", f"--gin_file={d / 'open.gin'}"),
       "open.gin ends inside an unclosed bracket"),
      ("model_dir is a file", main(f"--model_dir={d / 'in.txt'}", *TINY), "is a file, not a"),
      ("unreachable TPU", run("--tpu=no-such-tpu", gp("RunSettings.train_steps=1")),
       "--tpu=no-such-tpu: the Cloud TPU cannot be found"),
      ("unknown task", run(gp("RunSettings.mixture_or_task_name='glue_sst_local'"),
                           gp("RunSettings.train_steps=1")), "did you mean"),
      ("missing model_dir", ["t5mtf.main", *TINY], "model_dir"),
      ("predict without files", on(m, "--mode=predict"), "--input_file and --output_file"),
      ("predict into a missing folder", on(m, "--mode=predict", f"--input_file={d / 'in.txt'}",
                                          f"--output_file={d / 'nodir' / 'o.txt'}"),
       "does not exist; create it first"),
      ("predict missing input", on(m, "--mode=predict", f"--input_file={d / 'nope.txt'}", out),
       "nope.txt"),
      ("predict non-UTF-8 input", on(m, "--mode=predict", f"--input_file={d / 'latin1.txt'}",
                                     out), "not UTF-8"),
      ("score line without tab", on(m, "--mode=score", f"--input_file={d / 'notab.tsv'}", out),
       "expected 'input<TAB>target'"),
      ("predict without checkpoint", on(d / "empty_dir", "--mode=predict",
                                        f"--input_file={d / 'in.txt'}", out), "no checkpoint"),
      ("predict with another model size", on(m, gp("ModelConfig.d_model=64"), "--mode=predict",
                                             f"--input_file={d / 'in.txt'}", out),
       "the configured model expects"),
      ("score with another model size", on(m, gp("ModelConfig.d_ff=128"), "--mode=score",
                                           f"--input_file={d / 'pairs.tsv'}", out), "expects"),
      ("export with another model size", on(m, gp("ModelConfig.d_model=64"), "--mode=export",
                                            f"--export_dir={d / 'exp'}"), "expects"),
      ("eval with another architecture", on(m, gp("ModelConfig.ffn_activation='gated-gelu'"),
                                            sst2, "--mode=eval"), "lacks"),
      ("predict from a truncated checkpoint", on(b, "--mode=predict",
                                                 f"--input_file={d / 'in.txt'}", out),
       "model.ckpt-4 cannot be read"),
      ("train from a truncated checkpoint", on(b, gp("RunSettings.train_steps=6")),
       "--resume_from_step=2"),
      ("train where the checkpoint file is gone",
       on(d / "nostate", gp("RunSettings.train_steps=6")),
       "checkpoints of steps [0, 2, 4] are on disk; continue from one with --resume_from_step"),
      ("predict where the checkpoint file is junk",
       on(d / "junkstate", "--mode=predict", f"--input_file={d / 'in.txt'}", out),
       "name the steps to use with --checkpoint_steps (e.g. --checkpoint_steps=4)"),
      ("resume from a missing step", on(m, gp("RunSettings.train_steps=6"),
                                        "--resume_from_step=3"), "no checkpoint of that step"),
      ("eval at a missing step", on(m, sst2, "--mode=eval", "--checkpoint_steps=999"),
       "no checkpoint for step(s) [999]"),
      ("eval at a step that is not a number", on(m, sst2, "--mode=eval", "--checkpoint_steps=abc"),
       "'abc' is not a step"),
      ("export without export_dir", on(m, "--mode=export"), "--export_dir"),
      ("export into a file", on(m, "--mode=export", f"--export_dir={d / 'in.txt'}"),
       "is a file, not a folder"),
      ("fine-tune from a missing checkpoint", run(gp(f"RunSettings.init_checkpoint='{d}/nope'"),
                                                  gp("RunSettings.train_steps=1")),
       "no checkpoint at"),
      ("fine-tune from another model size", run(gp(f"RunSettings.init_checkpoint='{m}'"),
                                                gp("ModelConfig.d_model=64"),
                                                gp("RunSettings.train_steps=1")), "expects"),
      # experiments
      ("table missing", ["t5mtf.experiments"], "--table is required"),
      ("table without experiments", ["t5mtf.experiments", "--table=99"],
       "no experiments for table 99"),
      ("unknown row", ["t5mtf.experiments", "--table=1", "--rows=zz",
                       f"--output_dir={d / 'exp_out'}"], "no row 'zz'"),
      ("zero seeds", ["t5mtf.experiments", "--table=1", "--seeds=0",
                      f"--output_dir={d / 'exp_out'}"], "--seeds=0"),
      ("unknown scale", ["t5mtf.experiments", "--table=1", "--scale=huge",
                         f"--output_dir={d / 'exp_out'}"], "scales/huge.gin"),
      ("row binding typo", ["t5mtf.experiments", "--table=1", "--rows=01",
                            "--gin_param=RunSettings.bogus=1", f"--output_dir={d / 'exp_out'}"],
       "RunSettings has no parameter 'bogus'"),
      # evaluation
      ("evaluation input missing", ["t5mtf.evaluation", f"--input={d / 'nope.jsonl'}"],
       "nope.jsonl"),
      ("evaluation invalid JSON", ["t5mtf.evaluation", f"--input={d / 'bad.jsonl'}"],
       "line 1: invalid JSON"),
      ("evaluation row without target", ["t5mtf.evaluation", f"--input={d / 'nokey.jsonl'}"],
       "missing 'target'"),
      ("evaluation prediction not a string", ["t5mtf.evaluation",
                                              f"--input={d / 'number.jsonl'}"],
       "'prediction' must be a string, got 1"),
      ("evaluation of an empty file", ["t5mtf.evaluation", f"--input={d / 'empty.txt'}"],
       "no rows to evaluate"),
      ("evaluation non-UTF-8 input", ["t5mtf.evaluation", f"--input={d / 'latin1.jsonl'}"],
       "line 1: not UTF-8"),
      ("evaluation output into a missing folder",
       ["t5mtf.evaluation", f"--input={d / 'number.jsonl'}", f"--output={d / 'nodir' / 'm.json'}"],
       "does not exist"),
      ("correlation over one row", ["t5mtf.evaluation", f"--input={d / 'stsb_one.jsonl'}"],
       "task glue_stsb_local: pearson_corrcoef over 1 row(s)"),
      ("evaluation unknown task", ["t5mtf.evaluation", f"--input={d / 'unknown.jsonl'}"],
       "did you mean"),
      ("evaluation of a mixture", ["t5mtf.evaluation", f"--input={d / 'mixture.jsonl'}"],
       "'glue_local' is a mixture, where a task is needed"),
      # convert
      ("convert from a missing HF folder", ["t5mtf.convert", f"--from_hf={d / 'nope'}",
                                            f"--to_checkpoint={d / 'c1'}"], "nope"),
      ("convert from a folder without config.json", ["t5mtf.convert",
                                                    f"--from_hf={d / 'hf_noconfig'}",
                                                    f"--to_checkpoint={d / 'c2'}"],
       "no config.json"),
      ("convert from a missing checkpoint", ["t5mtf.convert", f"--from_checkpoint={d / 'nope'}",
                                             f"--to_hf={d / 'h1'}"], "nope"),
      ("convert a file that is not msgpack", ["t5mtf.convert",
                                              f"--from_t5x={d / 'notmsgpack'}",
                                              f"--to_checkpoint={d / 'c3'}"],
       "not a flax msgpack checkpoint"),
      ("convert into a non-empty folder", ["t5mtf.convert", f"--from_checkpoint={m}",
                                           f"--to_hf={d / 'full'}", "--gin_file=models/tiny.gin"],
       "not empty"),
      ("convert without a direction", ["t5mtf.convert"], "give --from_hf or --from_t5x"),
      # C4
      ("C4 input matching nothing", ["t5mtf.data.c4", f"--input={d}/*.nothing",
                                     f"--output_dir={d / 'c4a'}"], "no file matches"),
      ("C4 into a non-empty folder", ["t5mtf.data.c4", f"--input={d / 'page.wet.gz'}",
                                      f"--output_dir={d / 'full'}"], "not empty"),
      ("C4 input without a readable page", ["t5mtf.data.c4", f"--input={d / 'page.wet.gz'}",
                                            f"--output_dir={d / 'c4c'}"],
       "no page could be read: 1 of 1 input file(s)"),
      ("C4 domains file not JSON", ["t5mtf.data.c4", f"--input={d / 'page.wet.gz'}",
                                    f"--output_dir={d / 'c4d'}", "--variant=realnewslike",
                                    f"--realnews_domains={d / 'en.txt'}"],
       "en.txt cannot be read"),
      ("C4 negative shard count", ["t5mtf.data.c4", f"--input={d / 'page.wet.gz'}",
                                   f"--output_dir={d / 'c4e'}", "--num_shards=-1"],
       "--num_shards=-1 must be 0"),
      ("C4 unknown variant", ["t5mtf.data.c4", f"--input={d / 'page.wet.gz'}",
                              f"--output_dir={d / 'c4b'}", "--variant=bogus"], "--variant"),
      # vocabulary training
      ("vocab weights with '='", ["t5mtf.data.vocab_train", f"--input=en:{d / 'en.txt'}",
                                  f"--output={d / 'v1'}", "--weights=en=10"],
       "'en=10' is not LANG:WEIGHT"),
      ("vocab input without language", ["t5mtf.data.vocab_train", f"--input={d / 'en.txt'}",
                                        f"--output={d / 'v2'}"], "is not LANG:GLOB"),
      ("vocab input matching nothing", ["t5mtf.data.vocab_train", f"--input=en:{d}/*.none",
                                        f"--output={d / 'v3'}"], "no file matches"),
      ("cluster host without port", run("--worker_hosts=127.0.0.1:2222,hostb"),
       "'hostb' is not host:port"),
      ("task index outside the cluster", run("--worker_hosts=a:1,b:2", "--task_index=2"),
       "--task_index=2 is not a task of the 2"),
      ("worker not reachable", run(f"--worker_hosts={_free_hosts(2)}", "--worker_wait_secs=1"),
       "not reachable after 1 s: start it with"),
      ("mesh devices not matching the mesh",
       run(gp("RunSettings.mesh_shape='model:2'"), gp("RunSettings.mesh_devices=('/cpu:0',)")),
       "mesh_devices names 1 devices but mesh_shape 'model:2' has 2 processors"),
  ]


def _free_hosts(n):
  from t5mtf.train import cluster
  return ",".join(f"127.0.0.1:{p}" for p in cluster.free_local_ports(n))


CASE_NAMES = [c[0] for c in cases(__import__("pathlib").Path("/x"))]


@pytest.mark.parametrize("index", range(len(CASE_NAMES)), ids=CASE_NAMES)
def test_bad_input_gets_one_clear_line(files, index):
  name, argv, expected = cases(files)[index]
  before = sorted(str(p) for p in files.rglob("*") if "model" not in p.parts[-2:])
  proc = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True,
                        timeout=600, cwd=os.path.dirname(os.path.dirname(__file__)))
  lines = [l for l in proc.stderr.splitlines() if l.strip()]
  assert proc.returncode != 0, f"{name}: exit 0\n{proc.stderr[-2000:]}"
  assert "Traceback" not in proc.stderr, f"{name}: traceback\n{proc.stderr[-3000:]}"
  message = [l for l in lines if expected in l]
  assert message, f"{name}: no line says {expected!r}; stderr ends:\n" + "\n".join(lines[-5:])
  after = sorted(str(p) for p in files.rglob("*") if "model" not in p.parts[-2:])
  written = [p for p in set(after) - set(before)
             if os.path.isfile(p) and not p.endswith(".lock")]
  assert not written, f"{name}: wrote {sorted(written)[:5]}"
  print(f"{name}: {message[0].strip()}")
