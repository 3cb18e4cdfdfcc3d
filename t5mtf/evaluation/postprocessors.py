"""Predicted strings back to labels and numbers (§2.4: a prediction that is not a valid label
is counted as wrong; it maps to -1)."""
import math


def string_label_to_class_id(text, label_classes, default=-1):
  """``"positive"`` with classes ["negative", "positive"] -> 1; anything else -> -1."""
  text = text.strip()
  return label_classes.index(text) if text in label_classes else default


def string_to_float(text, default=math.nan):
  """STS-B: ``"2.6"`` -> 2.6; an unparsable prediction -> NaN (scored as wrong)."""
  try:
    value = float(text.strip())
  except ValueError:
    return default
  return value if math.isfinite(value) else default


def lower_text(text):
  return text.strip()


def split_list(text, separator="\x1f"):
  return [t for t in text.split(separator) if t]
