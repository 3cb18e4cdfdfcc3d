"""The downstream catalog (§2.3): GLUE, SuperGLUE, SQuAD, CNN/Daily Mail, WMT.

Every benchmark is registered twice: ``<name>`` reads the TFDS builder and splits the paper used
(e.g. ``glue_cola_v002`` <- ``glue/cola:2.0.0``), ``<name>_local`` reads the real samples shipped
in ``data/tasks`` (see data/PROVENANCE.md). Both give the same features, so the same
preprocessors follow. A task's ``metric_fns`` are ``fn(examples, predictions) -> dict``.
"""
from t5mtf.data import mixing
from t5mtf.data import preprocessors as prep
from t5mtf.data import registry
from t5mtf.data import sources as src
from t5mtf.data.tasks import formats, local_sources
from t5mtf.evaluation import metrics, postprocessors as post

# name: (feature names in released order, label names, metric fns on class ids)
GLUE = {
    "cola": (["sentence"], ["unacceptable", "acceptable"], [metrics.matthews_corrcoef]),
    "sst2": (["sentence"], ["negative", "positive"], [metrics.accuracy]),
    "mrpc": (["sentence1", "sentence2"], ["not_equivalent", "equivalent"],
             [metrics.f1_and_accuracy]),
    "qqp": (["question1", "question2"], ["not_duplicate", "duplicate"],
            [metrics.f1_and_accuracy]),
    "mnli": (["hypothesis", "premise"], ["entailment", "neutral", "contradiction"],
             [metrics.accuracy]),
    "qnli": (["question", "sentence"], ["entailment", "not_entailment"], [metrics.accuracy]),
    "rte": (["sentence1", "sentence2"], ["entailment", "not_entailment"], [metrics.accuracy]),
    "wnli": (["sentence1", "sentence2"], ["not_entailment", "entailment"], [metrics.accuracy]),
}
SUPER_GLUE = {
    "boolq": (["passage", "question"], ["False", "True"], [metrics.accuracy]),
    "cb": (["hypothesis", "premise"], ["entailment", "contradiction", "neutral"],
           [metrics.accuracy, metrics.mean_multiclass_f1(3)]),
    "copa": (["choice1", "choice2", "premise", "question"], ["choice1", "choice2"],
             [metrics.accuracy]),
    "rte": (["hypothesis", "premise"], ["entailment", "not_entailment"], [metrics.accuracy]),
    "wic": (["sentence1", "sentence2", "word"], ["False", "True"], [metrics.accuracy]),
}


# Official training set sizes (examples), for examples-proportional mixing without the data.
TRAIN_SIZES = {
    "glue/cola": 8551, "glue/sst2": 67349, "glue/mrpc": 3668, "glue/qqp": 363846,
    "glue/stsb": 5749, "glue/mnli": 392702, "glue/qnli": 104743, "glue/rte": 2490,
    "glue/wnli": 635, "super_glue/boolq": 9427, "super_glue/cb": 250, "super_glue/copa": 400,
    "super_glue/multirc": 27243, "super_glue/record": 100730, "super_glue/rte": 2490,
    "super_glue/wic": 5428, "super_glue/wsc.fixed": 554,
}


def tfds(builder, version, splits=("train", "validation", "test")):
  return src.TfdsSource(f"{builder}:{version}", splits,
                        num_examples={"train": TRAIN_SIZES.get(builder)})


# -- metric adapters: (examples, predictions) -> dict ----------------------------------------


def _text(ex, key="targets_pretokenized"):
  v = ex[key]
  return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def label_metrics(label_names, fns):
  def metric(examples, predictions):
    t = [post.string_label_to_class_id(_text(e), label_names) for e in examples]
    p = [post.string_label_to_class_id(x, label_names) for x in predictions]
    out = {}
    for fn in fns:
      out.update(fn(t, p))
    return out
  return metric


def stsb_metrics(examples, predictions):
  t = [post.string_to_float(_text(e)) for e in examples]
  p = [post.string_to_float(x) for x in predictions]
  return {**metrics.pearson_corrcoef(t, p), **metrics.spearman_corrcoef(t, p)}


def answers_metrics(fn):
  def metric(examples, predictions):
    return fn([post.split_list(_text(e, "answers")) for e in examples], predictions)
  return metric


def multirc_metrics(examples, predictions):
  names = ["False", "True"]
  t = [post.string_label_to_class_id(_text(e), names) for e in examples]
  p = [post.string_label_to_class_id(x, names) for x in predictions]
  return metrics.multirc(t, p, [int(e["idx"]) for e in examples])


def wsc_metrics(examples, predictions):
  return metrics.wsc_accuracy([_text(e) for e in examples], predictions,
                              [_text(e, "label") == "True" for e in examples])


def text_metrics(fn):
  return lambda examples, predictions: fn([_text(e) for e in examples], predictions)


# -- registration -------------------------------------------------------------------------------


def _task(name, source, preprocessors, metric_fns):
  return registry.add_task(registry.Task(
      name, source, list(preprocessors) + [prep.tokenize], metric_fns=metric_fns))


def register_glue():
  for name, (features, labels, fns) in GLUE.items():
    fmt = formats.glue(name, features, labels)
    splits = ("train", "validation_matched", "validation_mismatched", "test_matched") \
        if name == "mnli" else ("train", "validation", "test")
    _task(f"glue_{name}_v002", tfds(f"glue/{name}", "2.0.0", splits), [fmt],
          [label_metrics(labels, fns)])
  _task("glue_stsb_v002", tfds("glue/stsb", "2.0.0"), [formats.stsb()], [stsb_metrics])
  # WNLI in the Winograd format of §2.4, scored like WSC.
  _task("glue_wnli_winograd_v002", tfds("glue/wnli", "2.0.0"),
        [formats.wnli_winograd()], [wsc_metrics])
  _task("glue_wnli_winograd_local", local_sources.glue()["wnli"], [formats.wnli_winograd()],
        [wsc_metrics])
  for name, source in local_sources.glue().items():
    if name == "stsb":
      _task("glue_stsb_local", source, [formats.stsb()], [stsb_metrics])
      continue
    features, labels, fns = GLUE[name]
    _task(f"glue_{name}_local", source, [formats.glue(name, features, labels)],
          [label_metrics(labels, fns)])


def register_super_glue():
  for name, (features, labels, fns) in SUPER_GLUE.items():
    _task(f"super_glue_{name}_v102", tfds(f"super_glue/{name}", "1.0.2"),
          [formats.glue(name, features, labels)], [label_metrics(labels, fns)])
  local = local_sources.super_glue()
  for name, (features, labels, fns) in SUPER_GLUE.items():
    _task(f"super_glue_{name}_local", local[name], [formats.glue(name, features, labels)],
          [label_metrics(labels, fns)])
  multirc_fmt = formats.glue("multirc", ["answer", "paragraph", "question"], ["False", "True"])
  _task("super_glue_multirc_v102", tfds("super_glue/multirc", "1.0.2"),
        [local_sources.tfds_multirc_ids, multirc_fmt], [multirc_metrics])
  _task("super_glue_multirc_local", local["multirc"], [multirc_fmt], [multirc_metrics])
  record_train = [formats.record(), _train_only(formats.flatten_answers)]
  _task("super_glue_record_v102", tfds("super_glue/record", "1.0.2"),
        [local_sources.tfds_record_lists] + record_train, [answers_metrics(metrics.record)])
  _task("super_glue_record_local", local["record"], record_train,
        [answers_metrics(metrics.record)])
  wsc_prep = [formats.wsc(), _train_only(formats.wsc_train_filter)]
  _task("super_glue_wsc_v102", tfds("super_glue/wsc.fixed", "1.0.2"),
        [local_sources.tfds_wsc_fields] + wsc_prep, [wsc_metrics])
  _task("super_glue_wsc_local", local["wsc"], wsc_prep, [wsc_metrics])
  # DPR in the same format; the paper trains WSC together with it (§2.4).
  _task("dpr_v001_simple", src.TfdsSource("definite_pronoun_resolution:1.1.0",
                                          ("train", "test")),
        [formats.dpr()], [text_metrics(lambda t, p: metrics.accuracy(t, p))])
  registry.add_mixture(registry.Mixture("super_glue_wsc_and_dpr",
                                        ["super_glue_wsc_v102", "dpr_v001_simple"]))


class _TrainOnly:
  """Applies ``fn`` to the training split only (a Task passes the split as ``split``)."""

  def __init__(self, fn):
    self.fn = fn

  def __call__(self, dataset, split="train"):
    return self.fn(dataset) if split == "train" else dataset


def _train_only(fn):
  return _TrainOnly(fn)


def register_generation():
  squad_metrics = [answers_metrics(metrics.squad)]
  _task("squad_v010", src.TfdsSource("squad/v1.1:3.0.0", ("train", "validation")),
        [local_sources.tfds_squad_answers, formats.squad()], squad_metrics)
  _task("squad_v010_local", local_sources.squad(), [formats.squad()], squad_metrics)
  rouge = [text_metrics(metrics.rouge)]
  _task("cnn_dailymail_v002", src.TfdsSource("cnn_dailymail:3.4.0"), [formats.summarize()],
        rouge)
  _task("cnn_dailymail_local", local_sources.cnn_dailymail(), [formats.summarize()], rouge)
  bleu = [text_metrics(metrics.bleu)]
  for pair, builder, split in (("de", "wmt_t2t_translate/de-en:1.0.0", "validation"),
                               ("fr", "wmt14_translate/fr-en:1.0.0", "validation"),
                               ("ro", "wmt16_translate/ro-en:1.0.0", "validation")):
    _task(f"wmt_t2t_ende_v003" if pair == "de" else f"wmt{'14' if pair == 'fr' else '16'}_en"
          f"{pair}_v003", src.TfdsSource(builder, ("train", split, "test")),
          [local_sources.tfds_translation_fields, formats.translate("en", pair)], bleu)
  for pair, source in local_sources.translation().items():
    source_lang, target_lang = pair.split("_")[:2]
    _task(f"translate_{pair}_local", source, [formats.translate(source_lang, target_lang)], bleu)


def register_mixtures():
  glue_local = [f"glue_{n}_local" for n in ("cola", "sst2", "mrpc", "stsb", "rte", "wnli")]
  sg_local = [f"super_glue_{n}_local" for n in
              ("boolq", "cb", "copa", "multirc", "record", "rte", "wic", "wsc")]
  registry.add_mixture(registry.Mixture("glue_local", glue_local,
                                        rates=lambda t: _size(t, 2**19)))
  registry.add_mixture(registry.Mixture("super_glue_local", sg_local,
                                        rates=lambda t: _size(t, 2**19)))
  glue_v002 = [f"glue_{n}_v002" for n in GLUE] + ["glue_stsb_v002"]
  sg_v102 = [f"super_glue_{n}_v102" for n in list(SUPER_GLUE) + ["multirc", "record", "wsc"]]
  # §2.3: all subtasks of a benchmark as one task, sampled examples-proportionally.
  registry.add_mixture(registry.Mixture("glue_v002_proportional", glue_v002,
                                        rates=lambda t: _size(t, 2**21)))
  registry.add_mixture(registry.Mixture("super_glue_v102_proportional", sg_v102,
                                        rates=lambda t: _size(t, 2**21)))
  default = ["glue_sst2_local", "glue_rte_local", "super_glue_boolq_local",
             "super_glue_cb_local", "squad_v010_local", "cnn_dailymail_local",
             "translate_en_de_local"]
  registry.add_mixture(registry.Mixture("default_finetune_local", default,
                                        rates=lambda t: _size(t, 2**12)))


def register_strategy_mixtures():
  """§3.5.3 training strategies on the shipped tasks: multi-task training on all of them,
  multi-task pre-training (the unsupervised task mixed in), and leave-one-out mixtures (all but
  one task, for multi-task pre-training followed by fine-tuning on the left-out one)."""
  tasks = ["glue_cola_local", "glue_sst2_local", "glue_mrpc_local", "glue_stsb_local",
           "glue_rte_local", "super_glue_boolq_local", "super_glue_cb_local",
           "super_glue_copa_local", "super_glue_rte_local", "super_glue_wic_local",
           "squad_v010_local", "cnn_dailymail_local", "translate_en_de_local",
           "translate_en_fr_local", "translate_en_ro_local"]
  # Examples-proportional with K = 2^19 (§3.5.2); the unsupervised task counts as larger than K,
  # as C4 is (our shipped stand-in is small, but its rate should be the paper's).
  rate = mixing.rate_fn("proportional:2**19", unbounded=("local_span_corruption",))
  registry.add_mixture(registry.Mixture("multitask_local", tasks, rates=rate))
  registry.add_mixture(registry.Mixture("multitask_local_with_pretraining",
                                        ["local_span_corruption"] + tasks, rates=rate))
  for left_out in tasks:
    registry.add_mixture(registry.Mixture(
        f"leave_one_out_{left_out}", ["local_span_corruption"] +
        [t for t in tasks if t != left_out], rates=rate))


def _size(task, limit):
  """Examples-proportional rate with artificial limit K (§3.5.2)."""
  return min(task.num_input_examples("train"), limit)


def register():
  register_glue()
  register_super_glue()
  register_generation()
  register_mixtures()
  register_strategy_mixtures()
