"""Decoded strings -> what the metrics compare, exactly as the released code maps them
(t5.data.postprocessors; ``tests/test_oracle_metrics.py`` checks each against it).

A postprocessor is ``fn(text, example=None, is_target=False)``: for a target it may read the
example (strings in it are bytes, as a dataset yields them); for a prediction it maps the
decoded text. A prediction that is not a valid label maps to -1 and counts as wrong (§2.4).
"""


def _text(value):
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def string_label_to_class_id(text, label_classes, default=-1, **unused):
  """``"positive"`` with classes ("negative", "positive") -> 1. Only an exact match counts:
  ``" positive"`` or ``"Positive"`` -> -1."""
  return list(label_classes).index(text) if text in label_classes else default


def string_to_float(text, default=-1.0, **unused):
  """STS-B: ``"2.6"`` -> 2.6; what ``float`` cannot parse -> -1.0 (``"nan"`` parses as NaN)."""
  try:
    return float(text)
  except ValueError:
    return default


def multirc(text, example=None, is_target=False):
  """{"value": class id} plus, for a target, its question id as the group."""
  out = {"value": string_label_to_class_id(text, ("False", "True"))}
  if is_target:
    out["group"] = example["idx/question"]
  return out


def record(text, example=None, is_target=False):
  """A target becomes all answers of its query with (passage, query) ids as the group."""
  if is_target:
    return {"value": [_text(a) for a in example["answers"]],
            "group": (example["idx/passage"], example["idx/query"])}
  return {"value": text}


def qa(text, example=None, is_target=False):
  """SQuAD: a target becomes the list of acceptable answers."""
  if is_target:
    return [_text(a) for a in example["answers"]]
  return text


WSC_DETERMINERS = {"a", "an", "few", "her", "his", "each", "every", "many", "much", "my", "our",
                   "some", "that", "the", "their", "these", "this", "those", "which", "whose",
                   "your"}


def wsc_simple(text, example=None, is_target=False):
  """WSC / WNLI in the Winograd format: a target is its label (1: the candidate is the
  referent); a prediction is 1 if it names the candidate (§2.4): lower-cased, determiners
  dropped, one word set inside the other, and an apostrophe in both or neither (so "Bob" is
  not "Bob's hat"); an empty prediction is -1."""
  if is_target:
    return int(example["label"])

  def clean(s):
    return " ".join(w for w in _text(s).strip().lower().split(" ") if w not in WSC_DETERMINERS)

  prediction = clean(text)
  if not prediction:
    return -1
  referent = clean(example["targets_pretokenized"])
  if ("'" in prediction) != ("'" in referent):
    return 0
  p, r = set(prediction.split(" ")), set(referent.split(" "))
  return int(p <= r or r <= p)
