"""Every pre-training objective of the paper (§3.3, Table 3, Figure 2), as noise functions.

Each objective reads a tokenized ``targets`` feature (the raw text) and writes ``inputs`` and
``targets``. It is a composition of three small functions, as in the paper's own factoring:
a *noise mask* (which tokens are corrupted), an *inputs transform* and a *targets transform*.
Using the paper's running example "Thank you for inviting me to your party last week." (Table 3):

==========================  ===================================================  ==================
objective                   inputs                                               targets
==========================  ===================================================  ==================
prefix_lm                   Thank you for inviting                               me to your party
                                                                                 last week .
bert_style                  Thank you <M> <M> me to your party apple week .      (original text)
deshuffling                 party me for your to . last fun you inviting week    (original text)
                            Thank
mass_style                  Thank you <M> <M> me to your party <M> week .        (original text)
iid_replace_spans           Thank you <X> me to your party <Y> week .            <X> for inviting
                            (the baseline, Figure 2)                             <Y> last <Z>
iid_drop_tokens             Thank you me to your party week .                    for inviting last
span_corruption             Thank you <X> to <Y> week .                          <X> for inviting me
                                                                                 <Y> your party last
                                                                                 <Z>
lm (decoder-only)           (none)                                               (original text)
==========================  ===================================================  ==================

``<X> <Y> <Z>`` are sentinels ``<extra_id_0>, <extra_id_1>, ...`` (ids vocab_size-1, -2, ...);
``<M>`` is the single mask sentinel ``<extra_id_0>``. Randomness is stateless and per example
(``preprocessors.map_with_seeds``), so the same seed gives the same corruption.
"""
import functools

import tensorflow as tf

from t5mtf.data import preprocessors

# ------------------------------------------------------------------------------------------------
# Noise masks: (length, seed) -> bool [length]
# ------------------------------------------------------------------------------------------------


def _split_seed(seed, n):
  return tf.unstack(tf.random.experimental.stateless_split(seed, n))


def iid_noise_mask(length, seed, noise_density=0.15):
  """Each token independently corrupted with probability ``noise_density`` (§3.3.2)."""
  return tf.random.stateless_uniform([length], seed) < noise_density


def _random_segmentation(num_items, num_segments, seed):
  """Lengths [num_segments] of a uniformly random split of num_items into non-empty segments."""
  first_in_segment = tf.argsort(tf.random.stateless_uniform([num_items - 1], seed)) \
      < num_segments - 1
  first_in_segment = tf.pad(tf.cast(first_in_segment, tf.int32), [[1, 0]])
  segment_id = tf.cumsum(first_in_segment)
  return tf.math.unsorted_segment_sum(tf.ones_like(segment_id), segment_id, num_segments)


def random_prefix_noise_mask(length, seed):
  """The prefix LM's mask (§3.3.1): the first k tokens are noise (the prefix), k uniform in
  [1, length - 1]. A 1-token text has an empty prefix, as in the released
  random_prefix_noise_mask at its only density, 0.5 (tests/test_oracle_objectives.py)."""
  k = tf.random.stateless_uniform([], seed, minval=tf.minimum(1, length - 1),
                                  maxval=tf.maximum(length, 1), dtype=tf.int32)
  return tf.range(length) < k


def random_spans_noise_mask(length, seed, noise_density=0.15, mean_noise_span_length=3.0):
  """Span corruption's mask (§3.3.4): round(length*density) noise tokens in
  round(noise/mean_span) spans, noise and non-noise span lengths drawn as random segmentations,
  spans alternating non-noise first. Exactly the corruption rate, on average the span length.
  """
  if noise_density == 0.0:  # As released: no noise at all (not the one token of the clamp).
    return tf.zeros([length], tf.bool)
  orig_length = length
  length = tf.maximum(length, 2)  # Room for one noise and one non-noise token.
  num_noise = tf.cast(tf.round(tf.cast(length, tf.float32) * noise_density), tf.int32)
  num_noise = tf.clip_by_value(num_noise, 1, length - 1)
  num_spans = tf.cast(tf.round(tf.cast(num_noise, tf.float32) / mean_noise_span_length),
                      tf.int32)
  num_spans = tf.maximum(num_spans, 1)
  num_nonnoise = length - num_noise
  seed_a, seed_b = _split_seed(seed, 2)
  noise_lengths = _random_segmentation(num_noise, num_spans, seed_a)
  nonnoise_lengths = _random_segmentation(num_nonnoise, num_spans, seed_b)
  interleaved = tf.reshape(tf.stack([nonnoise_lengths, noise_lengths], axis=1), [-1])
  span_starts = tf.cumsum(interleaved)[:-1]
  span_start_indicator = tf.math.unsorted_segment_sum(
      tf.ones_like(span_starts), span_starts, length)
  is_noise = tf.equal(tf.math.floormod(tf.cumsum(span_start_indicator), 2), 1)
  return is_noise[:orig_length]


# -- the same masks for a batch of equal-length examples: one set of ops for B rows ---------------


def _segment_sum_rows(values, ids, num_segments):
  """Row-wise unsorted_segment_sum: values, ids [B, n] -> [B, num_segments]."""
  batch = tf.shape(ids)[0]
  offsets = tf.range(batch)[:, None] * num_segments
  flat = tf.math.unsorted_segment_sum(tf.reshape(values, [-1]), tf.reshape(ids + offsets, [-1]),
                                      batch * num_segments)
  return tf.reshape(flat, [batch, num_segments])


def _random_segmentation_rows(batch, num_items, num_segments, seed):
  first = tf.argsort(tf.random.stateless_uniform([batch, num_items - 1], seed), axis=1) \
      < num_segments - 1
  first = tf.pad(tf.cast(first, tf.int32), [[0, 0], [1, 0]])
  segment_id = tf.cumsum(first, axis=1)
  return _segment_sum_rows(tf.ones_like(segment_id), segment_id, num_segments)


def random_spans_noise_mask_rows(batch, length, seed, noise_density=0.15,
                                 mean_noise_span_length=3.0):
  """``random_spans_noise_mask`` for ``batch`` rows of the same static ``length`` -> [B, L]."""
  if noise_density == 0.0:
    return tf.zeros([batch, length], tf.bool)
  num_noise = min(max(int(round(max(length, 2) * noise_density)), 1), max(length, 2) - 1)
  num_spans = max(int(round(num_noise / mean_noise_span_length)), 1)
  seed_a, seed_b = _split_seed(seed, 2)
  noise = _random_segmentation_rows(batch, num_noise, num_spans, seed_a)
  nonnoise = _random_segmentation_rows(batch, max(length, 2) - num_noise, num_spans, seed_b)
  interleaved = tf.reshape(tf.stack([nonnoise, noise], axis=2), [batch, 2 * num_spans])
  starts = tf.cumsum(interleaved, axis=1)[:, :-1]
  indicator = _segment_sum_rows(tf.ones_like(starts), starts, max(length, 2))
  return tf.equal(tf.math.floormod(tf.cumsum(indicator, axis=1), 2), 1)[:, :length]


def noise_span_to_unique_sentinel_rows(tokens, noise_mask, vocabulary):
  """Row-wise ``noise_span_to_unique_sentinel``: [B, L] -> ragged [B, None]."""
  prev = tf.pad(noise_mask[:, :-1], [[0, 0], [1, 0]])
  first = tf.logical_and(noise_mask, tf.logical_not(prev))
  later = tf.logical_and(noise_mask, prev)
  sentinel = vocabulary.sentinel_id(0) + 1 - tf.cumsum(tf.cast(first, tokens.dtype), axis=1)
  sentinel = tf.maximum(sentinel, vocabulary.vocab_size - vocabulary.extra_ids)
  return tf.ragged.boolean_mask(tf.where(first, sentinel, tokens), tf.logical_not(later))


def span_corruption_fixed_length(dataset, output_features, seed=0, noise_density=0.15,
                                 mean_noise_span_length=3.0, batch_size=128):
  """Span corruption for examples whose ``targets`` all have one static length (what
  ``concat_and_split`` yields): the same masks, drawn for ``batch_size`` examples at once, which
  is several times faster than one example at a time. Deterministic given ``seed``."""
  vocabulary = output_features["targets"].vocabulary
  length = dataset.element_spec["targets"].shape[0]
  seeds = tf.data.Dataset.random(seed=seed).map(lambda r: tf.bitcast(r, tf.int32))

  def corrupt(batch, batch_seed):
    tokens = batch["targets"]
    mask = random_spans_noise_mask_rows(tf.shape(tokens)[0], length, batch_seed, noise_density,
                                        mean_noise_span_length)
    return {"inputs": noise_span_to_unique_sentinel_rows(tokens, mask, vocabulary),
            "targets": noise_span_to_unique_sentinel_rows(tokens, tf.logical_not(mask),
                                                          vocabulary)}
  batches = dataset.map(lambda ex: {"targets": ex["targets"]}).batch(batch_size)
  return (tf.data.Dataset.zip((batches, seeds))
          .map(corrupt, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
          .unbatch())


def random_spans_helper(inputs_length=512, noise_density=0.15, mean_noise_span_length=3.0):
  """(tokens_length, targets_length): the longest raw text whose span-corrupted inputs (with
  one sentinel per span and EOS) fit ``inputs_length``. 512 -> (568, 114), as T5 pre-trains.
  """
  def lengths(tokens_length):
    num_noise = int(round(tokens_length * noise_density))
    num_spans = int(round(num_noise / mean_noise_span_length))
    return tokens_length - num_noise + num_spans + 1, num_noise + num_spans + 1
  tokens_length = inputs_length - 1
  while lengths(tokens_length + 1)[0] <= inputs_length:
    tokens_length += 1
  targets_length = lengths(tokens_length)[1]
  if noise_density == 0.5 and targets_length > inputs_length:
    # As released: at 50% the targets would be one token longer than the inputs; one raw
    # token less makes them the same length (Table 6's 50% row: 766 raw tokens, 512 targets).
    tokens_length, targets_length = tokens_length - 1, targets_length - 1
  return tokens_length, targets_length


# ------------------------------------------------------------------------------------------------
# Transforms: (tokens, noise_mask, vocabulary, seed) -> tokens
# ------------------------------------------------------------------------------------------------


def noise_span_to_unique_sentinel(tokens, noise_mask, vocabulary, seed=None):
  """Each run of noise tokens becomes one sentinel, <extra_id_0> first (Figure 2).
  Runs past the last sentinel all get the last one (the released code ran into wordpieces)."""
  prev_is_noise = tf.pad(noise_mask[:-1], [[1, 0]])
  first_noise = tf.logical_and(noise_mask, tf.logical_not(prev_is_noise))
  later_noise = tf.logical_and(noise_mask, prev_is_noise)
  sentinel = vocabulary.sentinel_id(0) + 1 - tf.cumsum(tf.cast(first_noise, tokens.dtype))
  # More spans than sentinels (e.g. i.i.d. noise at 50%): reuse the last sentinel rather than
  # run into ordinary wordpiece ids.
  sentinel = tf.maximum(sentinel, vocabulary.vocab_size - vocabulary.extra_ids)
  tokens = tf.where(first_noise, sentinel, tokens)
  return tf.boolean_mask(tokens, tf.logical_not(later_noise))


def nonnoise_span_to_unique_sentinel(tokens, noise_mask, vocabulary, seed=None):
  return noise_span_to_unique_sentinel(tokens, tf.logical_not(noise_mask), vocabulary)


def drop_noise_tokens(tokens, noise_mask, vocabulary=None, seed=None):
  return tf.boolean_mask(tokens, tf.logical_not(noise_mask))


def drop_nonnoise_tokens(tokens, noise_mask, vocabulary=None, seed=None):
  return tf.boolean_mask(tokens, noise_mask)


def noise_token_to_sentinel(tokens, noise_mask, vocabulary, seed=None):
  """Every noise token becomes the mask token <extra_id_0> (MASS-style, §3.3.2)."""
  return tf.where(noise_mask, tf.cast(vocabulary.sentinel_id(0), tokens.dtype), tokens)


def noise_token_to_random_token_or_sentinel(tokens, noise_mask, vocabulary, seed,
                                             random_prob=0.1):
  """BERT-style (§3.3.1): of the corrupted tokens, 90% the mask token and 10% a random token.

  The paper drops BERT's "10% unchanged"; so do we. Random tokens are drawn as the released
  code draws them: any id past pad/EOS/unk up to the vocabulary's size, sentinels included.
  """
  seed_a, seed_b = _split_seed(seed, 2)
  use_random = tf.random.stateless_uniform(tf.shape(tokens), seed_a) < random_prob
  random_tokens = tf.random.stateless_uniform(
      tf.shape(tokens), seed_b, minval=3, maxval=vocabulary.vocab_size, dtype=tf.int32)
  masked = tf.where(use_random, tf.cast(random_tokens, tokens.dtype),
                    tf.cast(vocabulary.sentinel_id(0), tokens.dtype))
  return tf.where(noise_mask, masked, tokens)


def keep_tokens(tokens, noise_mask=None, vocabulary=None, seed=None):
  return tokens


# ------------------------------------------------------------------------------------------------
# Objectives: preprocessors (dataset -> dataset)
# ------------------------------------------------------------------------------------------------


def denoise(dataset, output_features, seed=0, noise_mask_fn=iid_noise_mask,
            inputs_fn=noise_span_to_unique_sentinel, targets_fn=nonnoise_span_to_unique_sentinel,
            **mask_kwargs):
  """The general denoising objective: mask, then transform inputs and targets from ``targets``."""
  vocabulary = output_features["targets"].vocabulary

  def fn(ex, seed):
    tokens = ex["targets"]
    mask_seed, in_seed, tgt_seed = _split_seed(seed, 3)
    mask = noise_mask_fn(tf.size(tokens), mask_seed, **mask_kwargs)
    out = {k: v for k, v in ex.items() if k not in ("inputs", "targets")}
    out["inputs"] = inputs_fn(tokens, mask, vocabulary, in_seed)
    out["targets"] = targets_fn(tokens, mask, vocabulary, tgt_seed)
    return out
  return preprocessors.map_with_seeds(fn)(dataset, seed=seed)


def span_corruption(dataset, output_features, seed=0, noise_density=0.15,
                    mean_noise_span_length=3.0):
  """Random spans with unique sentinels (§3.3.4; the final T5 objective): 15%, mean span 3.
  Equal-length inputs (pre-training pieces) take the batched path."""
  shape = dataset.element_spec["targets"].shape
  if shape.rank == 1 and shape[0] is not None and shape[0] >= 2:
    return span_corruption_fixed_length(dataset, output_features, seed, noise_density,
                                        mean_noise_span_length)
  return denoise(dataset, output_features, seed, random_spans_noise_mask,
                 noise_span_to_unique_sentinel, nonnoise_span_to_unique_sentinel,
                 noise_density=noise_density, mean_noise_span_length=mean_noise_span_length)


def iid_replace_spans(dataset, output_features, seed=0, noise_density=0.15):
  """The baseline objective (§3.1.4, Figure 2): i.i.d. tokens, each run replaced by a sentinel."""
  return denoise(dataset, output_features, seed, iid_noise_mask, noise_span_to_unique_sentinel,
                 nonnoise_span_to_unique_sentinel, noise_density=noise_density)


def iid_drop_tokens(dataset, output_features, seed=0, noise_density=0.15):
  """Drop corrupted tokens from the input; target is the dropped tokens (§3.3.2)."""
  return denoise(dataset, output_features, seed, iid_noise_mask, drop_noise_tokens,
                 drop_nonnoise_tokens, noise_density=noise_density)


def bert_style(dataset, output_features, seed=0, noise_density=0.15):
  """BERT-style MLM as the paper adapts it: target is the whole original text (§3.3.1)."""
  return denoise(dataset, output_features, seed, iid_noise_mask,
                 noise_token_to_random_token_or_sentinel, keep_tokens,
                 noise_density=noise_density)


def mass_style(dataset, output_features, seed=0, noise_density=0.15):
  """BERT-style without random token swaps (§3.3.2, after MASS)."""
  return denoise(dataset, output_features, seed, iid_noise_mask, noise_token_to_sentinel,
                 keep_tokens, noise_density=noise_density)


def _shuffle_tokens(tokens, noise_mask, vocabulary, seed):
  return tf.gather(tokens, tf.argsort(tf.random.stateless_uniform(tf.shape(tokens), seed)))


def deshuffling(dataset, output_features, seed=0):
  """Inputs are the tokens shuffled; target is the original text (§3.3.1)."""
  return denoise(dataset, output_features, seed, iid_noise_mask, _shuffle_tokens, keep_tokens,
                 noise_density=1.0)


def prefix_lm(dataset, output_features, seed=0):
  """Split the text at a uniformly random point: prefix -> inputs, the rest -> targets (§3.3.1).
  As released: the prefix is the mask's noise, kept by drop_nonnoise_tokens."""
  return denoise(dataset, output_features, seed, random_prefix_noise_mask, drop_nonnoise_tokens,
                 drop_noise_tokens)


def lm(dataset, output_features=None):
  """Plain language modeling for decoder-only models: the text is the target, no inputs."""
  return dataset.map(lambda ex: {"targets": ex["targets"]})


OBJECTIVES = {
    "prefix_lm": prefix_lm,
    "bert_style": bert_style,
    "deshuffling": deshuffling,
    "mass_style": mass_style,
    "iid_replace_spans": iid_replace_spans,
    "iid_drop_tokens": iid_drop_tokens,
    "span_corruption": span_corruption,
    "lm": lm,
}


def get_objective(name, **kwargs):
  """An objective by name with its hyperparameters bound: ``get_objective("span_corruption",
  noise_density=0.25, mean_noise_span_length=5)``."""
  if name not in OBJECTIVES:
    import difflib
    close = difflib.get_close_matches(name, OBJECTIVES, n=3)
    raise ValueError(f"unknown objective {name!r}; closest: {close}; all: {sorted(OBJECTIVES)}")
  return functools.partial(OBJECTIVES[name], **kwargs) if kwargs else OBJECTIVES[name]
