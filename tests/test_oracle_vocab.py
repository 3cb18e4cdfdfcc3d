"""The vocabulary against the released one (seqio's SentencePieceVocabulary with 100 extra ids,
t5.data.get_default_vocabulary, in the original t5 venv): encoding real text and text with
sentinels written out (how a user prompts a pre-trained model), and decoding what a model can
emit (sentinels, EOS, padding, ids past the vocabulary), in Python and in the graph."""
import numpy as np
import pytest
import tensorflow as tf

from t5mtf.data import sources
from t5mtf.data import vocab as vocab_lib
from tests.peers import t5_env

pytestmark = pytest.mark.slow

EDGE_TEXTS = ["", " ", "  two  spaces ", "a\tb\nc", "Ünïcödé – “quotes” 日本語", "\x00ctrl\x07",
              "</s> <pad> <unk>", "e\u0301 NFC", "x" * 300,
              # Table 3's example corrupted, written out; sentinels mid-word and back to back.
              "Thank you <extra_id_0> me to your party <extra_id_1> week.",
              "<extra_id_0> for inviting <extra_id_1> last <extra_id_2>",
              "Hello<extra_id_0> world", "<extra_id_0><extra_id_1>", "<extra_id_99> <extra_id_100>"]


def real_texts():
  """Lines of the shipped Wikipedia text, some with a sentinel written in after a word."""
  lines = [l for l in open(sources.data_path("pretrain", "wiki_00.txt"), encoding="utf-8")
           .read().splitlines() if l.strip()][:150]
  rng = np.random.RandomState(0)
  out = []
  for i, line in enumerate(lines):
    words = line.split(" ")
    if i % 2 and len(words) > 3:
      at = rng.randint(1, len(words))
      words.insert(at, f"<extra_id_{rng.randint(100)}>")
    out.append(" ".join(words))
  return out


def id_lists(vocab):
  """What decoding meets: real text's ids with sentinels put in (span corruption's targets
  look like this), EOS part-way, padding inside and after, ids past the vocabulary."""
  rng = np.random.RandomState(1)
  out = [[], [1], [0], [1, 8774], [8774, 0, 296], [2, 3, 1], [31999, 32000],
         [32000, 32099, 32100, 32127, 40000]]
  for text in real_texts()[:60]:
    ids = vocab.encode(text)[:40]
    for _ in range(3):
      ids.insert(rng.randint(len(ids) + 1), 32099 - int(rng.randint(100)))
    if rng.rand() < 0.3:
      ids.insert(rng.randint(len(ids) + 1), 1)
    out.append(ids + [0] * rng.randint(3))
  out.append([int(i) for i in rng.randint(0, 32128, 200)])
  return out


def test_encode_and_decode_as_released():
  vocab = vocab_lib.get_default_vocabulary()
  texts, ids = EDGE_TEXTS + real_texts(), id_lists(vocab)
  theirs = t5_env.ok(t5_env.ask([{"op": "vocabulary", "encode": texts, "decode": ids}])[0])
  encoded = [[int(i) for i in vocab.encode(t)] for t in texts]
  in_graph = [vocab.tf_encode(tf.constant(t)).numpy().tolist() for t in texts]
  bad = [(t, o, r) for t, o, g, r in zip(texts, encoded, in_graph, theirs["encode"])
         if not o == g == r]
  assert not bad, bad[:3]
  decoded = [vocab.decode(i) for i in ids]
  decoded_tf = [vocab.tf_decode(tf.constant(i, tf.int32)).numpy().decode() for i in ids]
  bad = [(i, o, g, r) for i, o, g, r in zip(ids, decoded, decoded_tf, theirs["decode"])
         if not o == g == r]
  assert not bad, bad[:3]
  assert theirs["decode_tf"] == theirs["decode"]
  print(f"{len(texts)} texts encoded, {len(ids)} id lists decoded: identical")
