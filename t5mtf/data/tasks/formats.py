"""Text-to-text formats of the downstream tasks (§2.4, Appendix D), exactly as the released T5
tasks (t5==0.9.4) produce them; ``tests/test_oracle_formats.py`` compares every one with the
released code on the shipped rows and on edge cases.

Every formatter reads the features of the TFDS builder the paper used (the local sources yield
the same features, see ``local_sources.py``): labels are class indices (-1 where unlabelled),
ids are ints, lists are 1-D string tensors. Inputs are the task prefix then ``field: value``
pairs, fields in the released order (alphabetical unless a task fixes it; §2.4's prose writes
premise first); text is passed through unchanged (trailing spaces included), as the release does.
"""
import re

import tensorflow as tf

from t5mtf.data import preprocessors as prep


def _label_name(label, names):
  """Class index -> name; -1 (unlabelled test rows) -> "<unk>"."""
  names_t = tf.constant(list(names))
  index = tf.cast(label, tf.int32)
  return tf.where(tf.equal(index, -1), tf.constant("<unk>"),
                  tf.gather(names_t, tf.maximum(index, 0)))


def glue(benchmark, label_names, feature_names=None):
  """``{"sentence": "it is good ", "label": 1, "idx": 7}`` with benchmark "sst2" ->
  ``{"inputs": "sst2 sentence: it is good ", "targets": "positive", "idx": 7}``.
  MultiRC (fields question, answer, paragraph) also loses its HTML markup and keeps its three
  ids as ``idx/paragraph``, ``idx/question``, ``idx/answer``."""
  @prep.map_over_dataset
  def fn(ex):
    keys = feature_names or sorted(set(ex) - {"label", "idx"})
    parts = [benchmark]
    for key in keys:
      parts += [f"{key}:", ex[key]]
    inputs = tf.strings.join(parts, separator=" ")
    out = {"targets": _label_name(ex["label"], label_names)}
    if benchmark == "multirc":
      inputs = tf.strings.regex_replace(inputs, "<br>", " ")
      inputs = tf.strings.regex_replace(inputs, "<(/)?b>", "")
      for part in ("paragraph", "question", "answer"):
        out[f"idx/{part}"] = ex["idx"][part]
    else:
      out["idx"] = ex["idx"]
    out["inputs"] = inputs
    return out
  return fn


def stsb():
  """The score rounded to the nearest 0.2 as text (§2.4): 2.57 -> "2.6"."""
  @prep.map_over_dataset
  def fn(ex):
    inputs = tf.strings.join(["stsb sentence1:", ex["sentence1"], "sentence2:",
                              ex["sentence2"]], separator=" ")
    score = tf.cast(ex["label"], tf.float32)
    return {"inputs": inputs, "targets": tf.strings.as_string(tf.round(score * 5) / 5,
                                                              precision=1),
            "idx": ex["idx"]}
  return fn


def pad_punctuation(text):
  """Spaces around every ASCII punctuation mark, whitespace runs collapsed (the released
  SQuAD format): ``"Denver's (CO)"`` -> ``"Denver ' s ( CO ) "``."""
  text = tf.strings.regex_replace(text, r"([[:punct:]])", r" \1 ")
  return tf.strings.regex_replace(text, r"\s+", " ")


def squad():
  """``question: <q> context: <c>`` -> the first answer, all three punctuation-padded;
  ``answers`` keeps every answer (padded) for the metric (§2.4, D.15)."""
  @prep.map_over_dataset
  def fn(ex):
    answers = pad_punctuation(ex["answers"]["text"])
    question, context = pad_punctuation(ex["question"]), pad_punctuation(ex["context"])
    inputs = tf.strings.join(["question:", question, "context:", context], separator=" ")
    return {"inputs": tf.strings.regex_replace(inputs, r"\s+", " "), "targets": answers[0],
            "answers": answers, "context": context, "question": question, "id": ex["id"]}
  return fn


def summarize(article_key="article", summary_key="highlights"):
  """``summarize: <article>`` -> the highlights, text unchanged (§2.4)."""
  @prep.map_over_dataset
  def fn(ex):
    return {"inputs": tf.strings.join(["summarize:", ex[article_key]], separator=" "),
            "targets": ex[summary_key]}
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


# -- ReCoRD ---------------------------------------------------------------------------------------


def record(dataset):
  """One example per answer (``<unk>`` when a query has none), every split, as released:
  ``record query: <q with @placeholder> entities: a, b passage: <p>`` where each
  ``\\n@highlight\\n`` becomes ". " (or a space after . ? ! " ')."""
  def expand(ex):
    n = tf.maximum(tf.size(ex["answers"]), 1)
    targets = tf.cond(tf.size(ex["answers"]) > 0, lambda: ex["answers"],
                      lambda: tf.constant(["<unk>"]))
    passage = tf.strings.regex_replace(ex["passage"], r"(\.|\?|\!|\"|\')\n@highlight\n",
                                       r"\1 ")
    passage = tf.strings.regex_replace(passage, r"\n@highlight\n", ". ")
    inputs = tf.strings.join(["record query:", ex["query"], "entities:",
                              tf.strings.reduce_join(ex["entities"], separator=", "),
                              "passage:", passage], separator=" ")
    return tf.data.Dataset.from_tensor_slices({
        "inputs": tf.fill([n], inputs), "targets": targets,
        "answers": tf.repeat(ex["answers"][tf.newaxis], n, axis=0),
        "idx/passage": tf.fill([n], ex["idx"]["passage"]),
        "idx/query": tf.fill([n], ex["idx"]["query"])})
  return dataset.flat_map(expand)


# -- Winograd-style tasks (§2.4): the pronoun marked with asterisks, the target its referent ----

# Two WSC rows whose span2_index points at another word; the release spells out their inputs.
_WSC_SPECIAL_CASES = {
    'The boy continued to whip the pony , and eventually the pony threw him over. John laughed '
    'out quite loud. "Good for him," he said. ':
        'The boy continued to whip the pony , and eventually the pony threw him over. John '
        'laughed out quite loud. "Good for X ," he said.',
    "When they had eventually calmed down a bit , and had gotten home, Mr. Farley put the magic "
    "pebble in an iron safe . Some day they might want to use it , but really for now, what more "
    "could they wish for?":
        "When they had eventually calmed down a bit , and had gotten home, Mr. Farley put the "
        "magic pebble in an iron safe . Some day they might want to use X , but really for now, "
        "what more could they wish for?",
}


def _wsc_blanked(text, index):
  """The text with word ``index`` (space-separated) replaced by X."""
  words = tf.strings.split(text, " ")
  blanked = tf.strings.join([tf.strings.reduce_join(words[:index], separator=" "), "X",
                             tf.strings.reduce_join(words[index + 1:], separator=" ")],
                            separator=" ")
  for raw, fixed in _WSC_SPECIAL_CASES.items():
    blanked = tf.where(tf.equal(text, raw), tf.constant(fixed), blanked)
  return blanked


def wsc(correct_referent_only=False):
  """SuperGLUE WSC as released: ``wsc: Mitchell asked Tom if *he* could lend some money.`` ->
  ``Tom`` (the candidate; ``label`` says whether it is the referent). Training keeps only rows
  whose candidate is the referent (``correct_referent_only``)."""
  def fn(ex):
    blanked = _wsc_blanked(ex["text"], tf.cast(ex["span2_index"], tf.int32))
    marked = tf.strings.regex_replace(blanked, " X ", tf.strings.join(
        [" *", ex["span2_text"], "* "]))
    return {"inputs": tf.strings.join(["wsc:", marked], separator=" "),
            "targets": tf.reshape(ex["span1_text"], []), "label": ex["label"],
            "idx": ex["idx"]}

  def preprocess(dataset):
    if correct_referent_only:
      dataset = dataset.filter(lambda ex: tf.cast(ex["label"], tf.bool))
    return dataset.map(fn)
  return preprocess


def dpr():
  """DPR (TFDS ``definite_pronoun_resolution``) in the same format: the first occurrence of the
  pronoun as a word followed by a space, "." or "," is marked; the target is the right
  candidate. ``Bob asked Tom if he can lend some money.`` -> ``wsc: Bob asked Tom if *he* can
  lend some money.`` / ``Tom``."""
  @prep.map_over_dataset
  def fn(ex):
    pattern = tf.strings.join([r" (", ex["pronoun"], r")( |\.|,)"])
    marked = tf.strings.regex_replace(ex["sentence"], pattern, r" *\1*\2",
                                      replace_global=False)
    return {"inputs": tf.strings.join(["wsc:", marked], separator=" "),
            "targets": ex["candidates"][tf.cast(ex["label"], tf.int32)]}
  return fn


# -- WNLI in the Winograd format (evaluation only, as released) ---------------------------------

_WNLI_PRONOUNS = ("he", "she", "they", "it", "her", "his", "their", "them", "him")


def _clean_words(text):
  words = [re.sub(r"(\.|,|\?|\!)$", "", w) for w in text.strip().lower().split(" ")]
  return [w for w in words if w]


def _longest_prefix_inside(words, text_words):
  """How many leading ``words`` form a substring of the joined ``text_words``."""
  text = " ".join(text_words)
  for n in range(len(words)):
    if " ".join(words[:n + 1]) not in text:
      return n
  return len(words)


def _pronoun_match(premise, hypothesis, index):
  """(score, candidate): words around premise[index] found in the hypothesis, and what the
  hypothesis has in the pronoun's place."""
  before, after = premise[:index], premise[index + 1:]
  n_before = _longest_prefix_inside(before[::-1], hypothesis[::-1])
  n_after = _longest_prefix_inside(after, hypothesis)
  score = n_before + n_after
  if not score:
    return 0, ""
  left = before[len(before) - n_before:] if n_before else before
  right = after[:n_after]
  joined = " ".join(hypothesis)
  m = (re.search(" ".join(left + [r"(.+)"] + right), joined)
       or re.search(" ".join([r"^(.+)"] + right), joined)
       or re.search(" ".join(left + [r"(.+)$"]), joined))
  return score, m.group(1) if m else ""


def _candidate_in_hypothesis(candidate, hypothesis):
  words = candidate.split(" ")
  articles = [words.index(a) for a in ("a", "an", "the") if a in words]
  words = words[max(articles or [0]):]
  pattern = "(" + " ".join(re.escape(w) + r"(?:\.|,|\?|\!)?" for w in words) + ")"
  m = re.search(pattern, hypothesis, re.IGNORECASE)
  if not m:
    raise ValueError(f"WNLI: candidate {candidate!r} not found in {hypothesis!r}")
  found = m.group(1)
  if found and found[-1] in ".,!?":
    found = found[:-1]
  for suffix in ("'", "'s"):
    if found.endswith(suffix):
      return found[:-len(suffix)]
  return found


def _mark_word(sentence, index):
  words = sentence.split(" ")
  word = words[index]
  marked = f"*{word[:-1]}* {word[-1]}" if word[-1] in ".,!?" else f"*{word}*"
  return " ".join(words[:index] + [marked] + words[index + 1:])


def wnli_to_winograd(premise, hypothesis, label="wsc:"):
  """("The fish ate the worm. It was tasty.", "The worm was tasty.") ->
  ("wsc: The fish ate the worm. *It* was tasty.", "The worm"): the pronoun of the premise
  whose surrounding words best match the hypothesis, and what replaces it there."""
  p_words, h_words = _clean_words(premise), _clean_words(hypothesis)
  matches = [(_pronoun_match(p_words, h_words, i), i) for i, w in enumerate(p_words)
             if w in _WNLI_PRONOUNS]
  if not matches:
    raise ValueError(f"WNLI: no pronoun in {premise!r}")
  (_, candidate), index = max(matches, key=lambda m: m[0][0])
  target = _candidate_in_hypothesis(candidate, hypothesis)
  return f"{label} {_mark_word(premise, index)}", target


def wnli_winograd():
  """WNLI as WSC for evaluation (§2.4): every row kept; ``label`` 1 = the candidate is the
  referent."""
  def convert(s1, s2):
    return wnli_to_winograd(s1.numpy().decode("utf-8"), s2.numpy().decode("utf-8"))

  @prep.map_over_dataset
  def fn(ex):
    inputs, targets = tf.py_function(convert, [ex["sentence1"], ex["sentence2"]],
                                     [tf.string, tf.string])
    return {"inputs": tf.reshape(inputs, []), "targets": tf.reshape(targets, []),
            "premise": ex["sentence1"], "hypothesis": ex["sentence2"], "label": ex["label"],
            "idx": ex["idx"]}
  return fn
