"""Text-to-text formats of the downstream tasks (§2.4, Appendix D), as the released T5 tasks
produce them, so that released checkpoints work with our tasks.

Inputs are the task prefix then ``field: value`` pairs; the released code orders the fields
alphabetically (``mnli hypothesis: ... premise: ...``) where the paper's prose (§2.4) writes
premise first, and we follow the released code. Labels become words.

Every formatter is a per-example function over string (or TFDS-typed) features, returning
``{"inputs", "targets"}`` plus ids that grouped metrics need.
"""
import tensorflow as tf

from t5mtf.data import preprocessors as prep

LIST_SEPARATOR = "\x1f"  # Joins list-valued fields (ReCoRD entities/answers) in flat sources.


def label_to_text(label, names):
  """int, bool or string label -> its name; -1 (TFDS test splits) -> "<unk>".

  Strings may already be a name (``"entailment"``), an index (``"1"``) or a boolean
  (``"True"``/``"false"``, for ``names == ["False", "True"]``).
  """
  names_t = tf.constant(list(names))
  if label.dtype == tf.bool:
    index = tf.cast(label, tf.int32)
  elif label.dtype.is_integer:
    index = tf.cast(label, tf.int32)
  else:
    matches = tf.equal(tf.strings.lower(names_t), tf.strings.lower(tf.strings.strip(label)))
    is_number = tf.strings.regex_full_match(label, r"\s*-?\d+\s*")
    numeric = tf.strings.to_number(tf.where(is_number, label, "-1"), tf.int32)
    index = tf.where(tf.reduce_any(matches), tf.argmax(tf.cast(matches, tf.int32),
                                                        output_type=tf.int32), numeric)
  valid = tf.logical_and(index >= 0, index < len(names))
  return tf.where(valid, tf.gather(names_t, tf.clip_by_value(index, 0, len(names) - 1)),
                  "<unk>")


def _fields(prefix, ex, feature_names):
  parts = [prefix]
  for name in feature_names:
    parts += [f"{name}:", tf.strings.strip(ex[name])]
  return tf.strings.join(parts, separator=" ")


def glue(benchmark, feature_names, label_names):
  """``{"sentence": "it is good", "label": 1}`` with benchmark "sst2" ->
  ``{"inputs": "sst2 sentence: it is good", "targets": "positive"}``."""
  @prep.map_over_dataset
  def fn(ex):
    return {"inputs": _fields(benchmark, ex, feature_names),
            "targets": label_to_text(ex["label"], label_names), "idx": _idx(ex)}
  return fn


def _idx(ex, key="idx"):
  value = ex.get(key, tf.constant(-1))
  if isinstance(value, dict):  # TFDS MultiRC/ReCoRD: nested ids.
    return tf.constant(-1)
  if value.dtype == tf.string:
    return tf.strings.to_number(tf.where(tf.strings.regex_full_match(value, r"-?\d+"),
                                         value, "-1"), tf.int64)
  return tf.cast(value, tf.int64)


def stsb_score_to_text(score):
  """2.57 -> "2.6": rounded to the nearest 0.2 (§2.4)."""
  if score.dtype == tf.string:
    score = tf.strings.to_number(score, tf.float32)
  return tf.strings.as_string(tf.round(tf.cast(score, tf.float32) * 5.0) / 5.0, precision=1)


def stsb():
  @prep.map_over_dataset
  def fn(ex):
    return {"inputs": _fields("stsb", ex, ["sentence1", "sentence2"]),
            "targets": stsb_score_to_text(ex["label"]), "idx": _idx(ex)}
  return fn


def squad():
  """``question: ... context: ...`` -> the first answer's text (§2.4, "SQuAD" in D.15)."""
  @prep.map_over_dataset
  def fn(ex):
    answers = ex["answers"]
    first = answers["text"][0] if isinstance(answers, dict) else \
        tf.strings.split(answers, LIST_SEPARATOR)[0]
    all_answers = tf.strings.reduce_join(answers["text"], separator=LIST_SEPARATOR) \
        if isinstance(answers, dict) else answers
    return {"inputs": tf.strings.join(["question:", _ws(ex["question"]), "context:",
                                       _ws(ex["context"])], separator=" "),
            "targets": first, "answers": all_answers}
  return fn


def _ws(text):
  """Collapses runs of whitespace (the released SQuAD/CNN-DM formats do)."""
  return tf.strings.strip(tf.strings.regex_replace(text, r"\s+", " "))


def summarize(article_key="article", summary_key="highlights"):
  """``summarize: <article>`` -> the highlights (§2.4)."""
  @prep.map_over_dataset
  def fn(ex):
    return {"inputs": tf.strings.join(["summarize:", _ws(ex[article_key])], separator=" "),
            "targets": _ws(ex[summary_key])}
  return fn


LANGUAGE_NAMES = {"en": "English", "de": "German", "fr": "French", "ro": "Romanian"}


def translate(source_language, target_language):
  """``translate English to German: That is good.`` -> ``Das ist gut.`` (Figure 1)."""
  prefix = (f"translate {LANGUAGE_NAMES[source_language]} to "
            f"{LANGUAGE_NAMES[target_language]}:")

  @prep.map_over_dataset
  def fn(ex):
    return {"inputs": tf.strings.join([prefix, ex[source_language]], separator=" "),
            "targets": ex[target_language]}
  return fn


def wsc(benchmark="wsc"):
  """Winograd format of §2.4: the pronoun is marked with asterisks and the target is the noun
  it refers to. ``The city councilmen refused the demonstrators a permit because *they*
  feared violence.`` -> ``The city councilmen``."""
  @prep.map_over_dataset
  def fn(ex):
    words = tf.strings.split(ex["text"], " ")
    index = tf.cast(_as_int(ex["span2_index"]), tf.int32)
    n_pronoun = tf.size(tf.strings.split(ex["span2_text"], " "))
    marked = tf.strings.join(["*", tf.strings.reduce_join(
        words[index:index + n_pronoun], separator=" "), "*"])
    text = tf.strings.reduce_join(tf.concat([words[:index], [marked],
                                             words[index + n_pronoun:]], 0), separator=" ")
    return {"inputs": tf.strings.join([f"{benchmark}:", text], separator=" "),
            "targets": ex["span1_text"], "label": label_to_text(ex["label"], ["False", "True"]),
            "idx": _idx(ex)}
  return fn


def _as_int(value):
  return tf.strings.to_number(value, tf.int64) if value.dtype == tf.string else value


def wsc_train_filter(dataset):
  """WSC trains only on examples whose candidate is the referent (§2.4)."""
  return dataset.filter(lambda ex: tf.equal(ex["label"], "True"))


def record():
  """``record query: ... entities: a, b passage: ...`` -> an answer; the placeholder @placeholder
  stays in the query. For training, one example per answer (ReCoRD in D.16)."""
  @prep.map_over_dataset
  def fn(ex):
    entities = tf.strings.split(ex["entities"], LIST_SEPARATOR)
    passage = tf.strings.regex_replace(ex["passage"], r"(\.|\?|\!|\"|\')?\n@highlight\n",
                                       ". ")
    inputs = tf.strings.join(["record query:", ex["query"], "entities:",
                              tf.strings.reduce_join(entities, separator=", "), "passage:",
                              passage], separator=" ")
    answers = tf.strings.split(ex["answers"], LIST_SEPARATOR)
    return {"inputs": inputs, "targets": answers[0], "answers": ex["answers"],
            "idx": _idx(ex)}
  return fn


def flatten_answers(dataset):
  """One training example per ReCoRD answer."""
  def expand(ex):
    answers = tf.strings.split(ex["answers"], LIST_SEPARATOR)
    n = tf.size(answers)
    return tf.data.Dataset.from_tensor_slices({
        "inputs": tf.fill([n], ex["inputs"]), "targets": answers,
        "answers": tf.fill([n], ex["answers"]), "idx": tf.fill([n], ex["idx"])})
  return dataset.flat_map(expand)


# -- WNLI in the Winograd format (§2.4) -----------------------------------------------------------

PRONOUNS = {"it", "he", "she", "they", "him", "her", "them", "his", "its", "their", "hers",
            "theirs", "we", "us", "i", "me", "you"}


def _norm_words(text):
  import re
  return [re.sub(r"[^\w']", "", w).lower() for w in text.split()]


def wnli_to_winograd(sentence1, sentence2):
  """Finds the pronoun of sentence1 that sentence2 replaces by a noun phrase.

  sentence2 reads as (words before the pronoun) + candidate + (words after it); we choose the
  pronoun whose surroundings match the most words and return (sentence1 with the pronoun marked
  ``*...*``, the candidate). ``("I stuck a pin through a carrot. When I pulled the pin out, it had
  a hole.", "The carrot had a hole.")`` -> ``("... out, *it* had a hole.", "The carrot")``.
  Returns (None, None) when no pronoun aligns.
  """
  w1, w2 = _norm_words(sentence1), _norm_words(sentence2)
  raw1, raw2 = sentence1.split(), sentence2.split()
  best = None
  for i, word in enumerate(w1):
    if word not in PRONOUNS:
      continue
    k = _suffix_match(w1[i + 1:], w2)  # Words after the pronoun that end sentence2.
    a = _prefix_match(w1[:i], w2[:len(w2) - k])
    if len(w2) - k - a <= 0:
      continue
    score = k + a
    if score > 0 and (best is None or score > best[0]):
      best = (score, i, a, len(w2) - k)
  if best is None:
    return None, None
  _, i, start, end = best
  candidate = " ".join(raw2[start:end]).rstrip(".,;:!?")
  marked = raw1[:i] + ["*" + raw1[i] + "*"] + raw1[i + 1:]
  return " ".join(marked), candidate


def _suffix_match(after_pronoun, w2):
  """Largest k such that sentence2's last k words equal the k words after the pronoun."""
  best = 0
  for k in range(1, min(len(after_pronoun), len(w2) - 1) + 1):
    if after_pronoun[:k] == w2[len(w2) - k:]:
      best = k
  return best


def _prefix_match(before_pronoun, head):
  """Largest a such that sentence2 starts with the a words right before the pronoun."""
  best = 0
  for a in range(1, min(len(before_pronoun), len(head) - 1) + 1):
    if before_pronoun[len(before_pronoun) - a:] == head[:a]:
      best = a
  return best


def wnli_winograd():
  """WNLI as WSC: ``wsc: ... *it* had a hole.`` -> the candidate; ``label`` says whether the
  candidate is the referent (entailment). Unalignable pairs get an empty input and are dropped."""
  def convert(s1, s2):
    inputs, candidate = wnli_to_winograd(s1.numpy().decode(), s2.numpy().decode())
    if inputs is None:
      return "", ""
    return "wsc: " + inputs, candidate

  def fn(ex):
    inputs, target = tf.py_function(convert, [ex["sentence1"], ex["sentence2"]],
                                    [tf.string, tf.string])
    inputs.set_shape([])
    target.set_shape([])
    label = label_to_text(ex["label"], ["not_entailment", "entailment"])
    return {"inputs": inputs, "targets": target,
            "label": tf.where(tf.equal(label, "entailment"), "True", "False"), "idx": _idx(ex)}

  def preprocess(dataset):
    return dataset.map(fn).filter(lambda ex: tf.strings.length(ex["inputs"]) > 0)
  return preprocess


def dpr():
  """DPR (definite pronoun resolution, TFDS ``definite_pronoun_resolution``) in the Winograd
  format of §2.4, which the paper adds to WSC's training data: the first occurrence of the
  pronoun is marked and the target is the correct candidate.
  ``{"sentence": "The bee landed on the flower because it had pollen.", "pronoun": "it",
  "candidates": ["The bee", "the flower"], "label": 1}`` ->
  ``{"inputs": "wsc: The bee landed on the flower because *it* had pollen.",
  "targets": "the flower"}``."""
  def mark(sentence, pronoun):
    import re
    text, word = sentence.numpy().decode(), pronoun.numpy().decode()
    return re.sub(r"\b(" + re.escape(word) + r")\b", r"*\1*", text, count=1)

  @prep.map_over_dataset
  def fn(ex):
    marked = tf.py_function(mark, [ex["sentence"], ex["pronoun"]], tf.string)
    marked.set_shape([])
    candidates = ex["candidates"]
    if candidates.shape.rank == 0:  # Flat sources join lists with LIST_SEPARATOR.
      candidates = tf.strings.split(candidates, LIST_SEPARATOR)
    target = tf.gather(candidates, tf.cast(_as_int(ex["label"]), tf.int32))
    return {"inputs": tf.strings.join(["wsc:", marked], separator=" "), "targets": target}
  return fn
