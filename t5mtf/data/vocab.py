"""SentencePiece vocabulary with T5's extra ids (sentinels), in Python and inside tf.data.

Paper §2.4/§3.1.3: one SentencePiece model (32,000 wordpieces) shared by every task; pre-training
replaces dropped-out spans by sentinel tokens that are "unique to the sequence". The released code
adds 100 of them on top of the model: ``<extra_id_0>`` is the last id (32099) and counting goes down.

We append the sentinels to the model proto as user-defined pieces ("▁<extra_id_N>", as
released: a sentinel starts a word), so that Python encoding,
``tensorflow_text`` encoding inside the graph and decoding all agree on them by construction::

    vocab = SentencePieceVocabulary(DEFAULT_SPM_PATH)
    vocab.encode("Hello world")        -> [8774, 296]
    vocab.encode("<extra_id_0> world") -> [32099, 296]
    vocab.vocab_size                   -> 32100   (the model pads its embedding to 32128)
"""
import functools
import os
import weakref

import sentencepiece as spm
import tensorflow as tf
from sentencepiece import sentencepiece_model_pb2



class _EagerKey:
  """Stands for eager mode in the per-graph tokenizer cache."""


_EAGER = _EagerKey()
PAD_ID = 0
EOS_ID = 1
UNK_ID = 2
DEFAULT_EXTRA_IDS = 100
DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "data")
DEFAULT_SPM_PATH = os.path.join(DATA_DIR, "vocab", "t5_cc_all_32000_spiece.model")


def extra_id_piece(i):
  """The piece of ``<extra_id_i>``, with SentencePiece's word-start mark as released (seqio):
  "a <extra_id_0> b" encodes to the ids span corruption makes (no separate "▁" before the
  sentinel), and a sentinel decodes with a space before it."""
  return f"\u2581<extra_id_{i}>"


class SentencePieceVocabulary:
  """A SentencePiece model plus ``extra_ids`` sentinels on top."""

  def __init__(self, model_file=DEFAULT_SPM_PATH, extra_ids=DEFAULT_EXTRA_IDS):
    self.model_file = model_file
    self.extra_ids = extra_ids
    try:
      with open(model_file, "rb") as f:
        raw = f.read()
      proto = sentencepiece_model_pb2.ModelProto()
      proto.ParseFromString(raw)
    except (OSError, Exception) as e:  # DecodeError is not exported by every protobuf build.
      raise ValueError(f"cannot read SentencePiece model {model_file!r}: {e}") from e
    if not proto.pieces:
      raise ValueError(f"{model_file!r} is not a SentencePiece model (no pieces)")
    self.base_vocab_size = len(proto.pieces)
    for i in reversed(range(extra_ids)):  # <extra_id_{n-1}> first, so <extra_id_0> is the last id.
      proto.pieces.add(piece=extra_id_piece(i), score=0.0,
                       type=sentencepiece_model_pb2.ModelProto.SentencePiece.USER_DEFINED)
    self._proto_bytes = proto.SerializeToString()
    self._sp = spm.SentencePieceProcessor(model_proto=self._proto_bytes)

  # -- sizes and special ids -------------------------------------------------------------------
  @property
  def vocab_size(self):
    return self.base_vocab_size + self.extra_ids

  pad_id = PAD_ID
  eos_id = EOS_ID
  unk_id = UNK_ID

  def sentinel_id(self, i=0):
    """Id of ``<extra_id_i>``: vocab_size - 1 - i."""
    if not 0 <= i < self.extra_ids:
      raise ValueError(f"sentinel {i} out of range: this vocabulary has {self.extra_ids} extra ids")
    return self.vocab_size - 1 - i

  # -- python ----------------------------------------------------------------------------------
  def encode(self, text):
    return self._sp.encode(text)

  def decode(self, ids):
    """Decodes ids, stopping at the first EOS (as T5 does) and ignoring padding."""
    ids = [int(i) for i in ids]
    if EOS_ID in ids:
      ids = ids[:ids.index(EOS_ID)]
    ids = [i if 0 <= i < self.vocab_size else UNK_ID for i in ids if i != PAD_ID]
    return self._sp.decode(ids)

  # -- tensorflow ------------------------------------------------------------------------------
  @property
  def tf_tokenizer(self):
    """One tokenizer resource per outermost graph (eager: one), built outside any tf.function or
    dataset trace so that every dataset built in that graph can capture it."""
    import tensorflow_text as tf_text  # Imported lazily: it registers ops at import.
    with tf.init_scope():
      graph = None if tf.executing_eagerly() else tf.compat.v1.get_default_graph()
      tokenizers = self.__dict__.setdefault("_tokenizers", weakref.WeakKeyDictionary())
      key = graph if graph is not None else _EAGER
      if key not in tokenizers:
        tokenizers[key] = tf_text.SentencepieceTokenizer(model=self._proto_bytes,
                                                         out_type=tf.int32)
      return tokenizers[key]

  def tf_encode(self, text):
    """text: string scalar or [n] -> int32 [None] or ragged [n, None]."""
    return self.tf_tokenizer.tokenize(text)

  def tf_decode(self, ids):
    """ids: int32 [length] -> string scalar (cut at EOS)."""
    ids = tf.convert_to_tensor(ids, tf.int32)
    is_eos = tf.cast(tf.equal(ids, EOS_ID), tf.int32)
    keep = tf.logical_and(tf.equal(tf.cumsum(is_eos), 0), tf.not_equal(ids, PAD_ID))
    ids = tf.boolean_mask(ids, keep)
    ids = tf.where(ids < self.vocab_size, ids, UNK_ID)
    return self.tf_tokenizer.detokenize(ids)

  def __eq__(self, other):
    return (isinstance(other, SentencePieceVocabulary)
            and self._proto_bytes == other._proto_bytes)

  def __hash__(self):
    return hash(self._proto_bytes)

  def __repr__(self):
    return f"SentencePieceVocabulary({self.model_file!r}, extra_ids={self.extra_ids})"


@functools.lru_cache(maxsize=None)
def get_default_vocabulary():
  return SentencePieceVocabulary(DEFAULT_SPM_PATH, DEFAULT_EXTRA_IDS)
