import gzip

import pytest

from t5mtf.data import sources


def rows(source, split="train"):
  return [{k: v.decode() for k, v in ex.items()}
          for ex in source.get_dataset(split).as_numpy_iterator()]


def test_tsv_with_header(tmp_path):
  f = tmp_path / "a.tsv"
  f.write_text("sentence\tlabel\nit is good .\t1\nit is bad .\t0\n")
  src = sources.DelimitedSource({"train": str(f)}, {"sentence": "sentence", "label": "label"})
  assert rows(src) == [{"sentence": "it is good .", "label": "1"},
                       {"sentence": "it is bad .", "label": "0"}]
  assert src.num_examples("train") == 2


def test_row_with_missing_field_names_file_and_row(tmp_path):
  f = tmp_path / "a.tsv"
  f.write_text("sentence\tlabel\nok\t1\nbroken row\n")
  src = sources.DelimitedSource({"train": str(f)}, {"sentence": "sentence", "label": "label"})
  with pytest.raises(sources.SourceError, match=r"a.tsv: row 3: missing field"):
    src.get_dataset("train")


def test_non_utf8_names_file_and_line(tmp_path):
  f = tmp_path / "b.txt"
  f.write_bytes(b"fine line\nbad \xff\xfe line\n")
  with pytest.raises(sources.SourceError, match=r"b.txt: line 2: not UTF-8"):
    sources.TextLineSource({"train": str(f)}).get_dataset("train")


def test_empty_file(tmp_path):
  f = tmp_path / "empty.txt"
  f.write_text("\n\n")
  with pytest.raises(sources.SourceError, match="empty.txt: file is empty"):
    sources.TextLineSource({"train": str(f)}).get_dataset("train")


def test_jsonl_gzip_nested_and_bad_json(tmp_path):
  f = tmp_path / "a.jsonl.gz"
  with gzip.open(f, "wt") as g:
    g.write('{"q": "who?", "a": {"text": ["me"]}}\n')
  src = sources.JsonlSource({"train": str(f)}, {"question": "q", "answers": "a/text"})
  assert rows(src) == [{"question": "who?", "answers": '["me"]'}]
  bad = tmp_path / "bad.jsonl"
  bad.write_text('{"q": "x"}\n{oops\n')
  with pytest.raises(sources.SourceError, match="bad.jsonl: line 2: invalid JSON"):
    sources.JsonlSource({"train": str(bad)}, {"q": "q"}).get_dataset("train")
  with pytest.raises(sources.SourceError, match="line 1: missing field 'a'"):
    sources.JsonlSource({"train": str(bad)}, {"a": "a"}).get_dataset("train")


def test_truncated_gzip(tmp_path):
  f = tmp_path / "t.jsonl.gz"
  f.write_bytes(gzip.compress(b'{"text": "a"}\n' * 100)[:40])
  with pytest.raises(sources.SourceError, match="t.jsonl.gz: cannot read"):
    sources.JsonlSource({"train": str(f)}, {"text": "text"}).get_dataset("train")


def test_missing_split_and_missing_file(tmp_path):
  src = sources.TextLineSource({"train": str(tmp_path / "nope*.txt")})
  with pytest.raises(ValueError, match="no split 'validation'"):
    src.get_dataset("validation")
  with pytest.raises(sources.SourceError, match="no file matches"):
    src.get_dataset("train")


def test_tfrecord_round_trip(tmp_path):
  import tensorflow as tf
  path = str(tmp_path / "x.tfrecord")
  with tf.io.TFRecordWriter(path) as w:
    for t in ("one", "two"):
      ex = tf.train.Example(features=tf.train.Features(feature={
          "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[t.encode()]))}))
      w.write(ex.SerializeToString())
  assert rows(sources.TFRecordSource({"train": path})) == [{"text": "one"}, {"text": "two"}]


def test_tfds_data_not_prepared_says_how_to_get_it(tmp_path):
  """Offline, a paper task's TFDS data is absent: one error naming the builder and what to do
  (tfds raised a bare AssertionError), for an empty data_dir and for an unknown builder."""
  with pytest.raises(sources.SourceError, match=r"'glue/sst2:2.0.0' split 'train'.*"
                                                r"tfds build glue/sst2\).*_local"):
    sources.TfdsSource("glue/sst2:2.0.0", data_dir=str(tmp_path)).get_dataset("train")
  with pytest.raises(sources.SourceError, match="no_such_builder"):
    sources.TfdsSource("no_such_builder", splits=("train",)).get_dataset("train")
