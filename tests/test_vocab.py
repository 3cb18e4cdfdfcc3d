import hashlib

import numpy as np
import pytest
import tensorflow as tf

from t5mtf.data import vocab as vocab_lib

T5_SPM_SHA256 = "d60acb128cf7b7f2536e8f38a5b18a05535c9e14c7a355904270e15b0945ea86"


@pytest.fixture(scope="module")
def vocab():
  return vocab_lib.get_default_vocabulary()


def test_shipped_model_is_the_released_t5_vocabulary():
  with open(vocab_lib.DEFAULT_SPM_PATH, "rb") as f:
    assert hashlib.sha256(f.read()).hexdigest() == T5_SPM_SHA256


@pytest.mark.parametrize("text,ids", [
    ("Hello world", [8774, 296]),
    ("summarize: ", [21603, 10]),
    ("translate English to German: That is good.", [13959, 1566, 12, 2968, 10, 466, 19, 207, 5]),
])
def test_exact_ids_python_and_graph(vocab, text, ids):
  assert vocab.encode(text) == ids
  assert vocab.tf_encode(tf.constant(text)).numpy().tolist() == ids


def test_sentinels(vocab):
  assert vocab.vocab_size == 32100
  assert vocab.sentinel_id(0) == 32099 and vocab.sentinel_id(99) == 32000
  # A sentinel starts a word (its piece is "▁<extra_id_0>", as released): no "▁" of its own
  # before it, a space before it when decoded; written mid-word it is plain text.
  assert vocab.encode("Hello <extra_id_0> world") == [8774, 32099, 296]
  assert 32099 not in vocab.encode("Hello<extra_id_0> world")
  assert 32098 in vocab.tf_encode(tf.constant("a <extra_id_1> b")).numpy().tolist()
  assert vocab.decode([32099, 296]) == "<extra_id_0> world"
  assert vocab.decode([8774, 32099, 296]) == "Hello <extra_id_0> world"
  with pytest.raises(ValueError, match="out of range"):
    vocab.sentinel_id(100)


def test_decode_stops_at_eos_and_skips_padding(vocab):
  assert vocab.decode([8774, 296, 1, 8774, 0, 0]) == "Hello world"
  assert vocab.tf_decode(tf.constant([8774, 296, 1, 8774, 0])).numpy().decode() == "Hello world"


def test_batch_graph_encoding_matches_python(vocab):
  texts = ["The cat sat.", "naïve café – 東京", "   spaces   "]
  ragged = vocab.tf_encode(tf.constant(texts))
  assert [r.tolist() for r in ragged.numpy()] == [vocab.encode(t) for t in texts]


def test_not_a_model_file(tmp_path):
  bad = tmp_path / "bad.model"
  bad.write_bytes(b"\xff\x00 not a proto")
  with pytest.raises(ValueError, match="bad.model"):
    vocab_lib.SentencePieceVocabulary(str(bad))


def test_train_vocabulary_on_shipped_corpora(tmp_path):
  from t5mtf.data import vocab_train
  by_lang = vocab_train.parse_inputs([
      "en:data/pretrain/botchan.txt", "de:data/tasks/wmt/gettext_en-de.jsonl",
      "fr:data/tasks/wmt/gettext_en-fr.jsonl", "ro:data/tasks/wmt/gettext_en-ro.jsonl"])
  lines = vocab_train.mix(by_lang, vocab_train.DEFAULT_WEIGHTS)
  en = sum(len(l) for l in by_lang["en"])
  assert sum(len(l) for l in lines) >= en * 1.3
  for lang in ("de", "fr", "ro"):  # 10:1 by characters, to within one line.
    pair = vocab_train.mix({"en": by_lang["en"], lang: by_lang[lang]}, vocab_train.DEFAULT_WEIGHTS)
    chars = sum(len(l) for l in pair) - en
    assert 0 <= chars - en / 10 <= max(len(l) for l in by_lang[lang]), (lang, chars, en / 10)
  path = vocab_train.train(lines, str(tmp_path / "v"), vocab_size=800)
  v = vocab_lib.SentencePieceVocabulary(path)
  assert v.base_vocab_size == 800 and v.sentinel_id(0) == 899
  assert v._sp.id_to_piece(0) == "<pad>" and v._sp.id_to_piece(1) == "</s>"
  assert v.decode(v.encode("Das ist gut. C'est bon.")) == "Das ist gut. C'est bon."
