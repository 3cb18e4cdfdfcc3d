"""The downstream catalog (§2.3): GLUE, SuperGLUE, SQuAD, CNN/Daily Mail, WMT.

Every benchmark is registered twice: ``<name>`` reads the TFDS builder and splits the paper used
(e.g. ``glue_cola_v002`` <- ``glue/cola:2.0.0``), ``<name>_local`` reads the real samples shipped
in ``data/tasks`` (see data/PROVENANCE.md). Both give the same features, so the same
preprocessors follow. A task's ``metric_fns`` are ``fn(examples, predictions) -> dict``.
"""
import functools

from t5mtf.data import mixing
from t5mtf.data import preprocessors as prep
from t5mtf.data import registry
from t5mtf.data import sources as src
from t5mtf.data.tasks import formats, local_sources
from t5mtf.evaluation import metrics, postprocessors as post

# name: (label names, metric fns on class ids), as t5.data.glue_utils defines them. Inputs list
# every text feature in alphabetical order (the released default).
GLUE = {
    "cola": (["unacceptable", "acceptable"], [metrics.matthews_corrcoef]),
    "sst2": (["negative", "positive"], [metrics.accuracy]),
    "mrpc": (["not_equivalent", "equivalent"], [metrics.f1_and_accuracy]),
    "qqp": (["not_duplicate", "duplicate"], [metrics.f1_and_accuracy]),
    "mnli": (["entailment", "neutral", "contradiction"], [metrics.accuracy]),
    "qnli": (["entailment", "not_entailment"], [metrics.accuracy]),
    "rte": (["entailment", "not_entailment"], [metrics.accuracy]),
    "wnli": (["not_entailment", "entailment"], [metrics.accuracy]),
}
SUPER_GLUE = {
    "boolq": (["False", "True"], [metrics.accuracy]),
    "cb": (["entailment", "contradiction", "neutral"],
           [metrics.mean_multiclass_f1(3), metrics.accuracy]),
    "copa": (["choice1", "choice2"], [metrics.accuracy]),
    "rte": (["entailment", "not_entailment"], [metrics.accuracy]),
    "wic": (["False", "True"], [metrics.accuracy]),
}
# The released GLUE and SuperGLUE mixtures' rates (t5.data.glue_utils' weight mappings): each
# task's training examples after its preprocessing (ReCoRD one per answer, 138,854; WSC only the
# rows whose candidate is the referent, 259; QQP 363,849 as the released table has it), fixed
# numbers, not capped by K. WNLI is not trained on (the paper trains on WSC and DPR instead,
# §2.4), DPR is part of SuperGLUE's mixture; evaluation-only tasks have rate 0.
GLUE_RATES = {"glue_cola_v002": 8_551., "glue_sst2_v002": 67_349., "glue_mrpc_v002": 3_668.,
              "glue_qqp_v002": 363_849., "glue_stsb_v002": 5_749., "glue_mnli_v002": 392_702.,
              "glue_qnli_v002": 104_743., "glue_rte_v002": 2_490.,
              "glue_mnli_mismatched_v002": 0., "glue_mnli_matched_v002": 0.}
SUPER_GLUE_RATES = {"dpr_v001_simple": 1_322., "super_glue_wsc_v102": 259.,
                    "super_glue_boolq_v102": 9_427., "super_glue_cb_v102": 250.,
                    "super_glue_copa_v102": 400., "super_glue_multirc_v102": 27_243.,
                    "super_glue_record_v102": 138_854., "super_glue_rte_v102": 2_490.,
                    "super_glue_wic_v102": 5_428.}
# MNLI's evaluation sets, each its own task as released (the GLUE average groups the two).
MNLI_EVAL = {"mnli_matched": "glue/mnli_matched", "mnli_mismatched": "glue/mnli_mismatched"}
# Evaluating glue_mnli_v002 means evaluating both of them.
EVAL_TASKS = {"glue_mnli_v002": ["glue_mnli_matched_v002", "glue_mnli_mismatched_v002"]}


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


def _task(name, source, preprocessors, metric_fns, postprocess_fn=None):
  return registry.add_task(registry.Task(
      name, source, list(preprocessors) + [prep.tokenize], metric_fns=metric_fns,
      postprocess_fn=postprocess_fn))


def _labels(names):
  return functools.partial(post.string_label_to_class_id, label_classes=tuple(names))


def register_glue():
  local = local_sources.glue()
  for name, (labels, fns) in GLUE.items():
    fmt = formats.glue(name, labels)
    splits = ("train", "validation_matched", "validation_mismatched", "test_matched",
              "test_mismatched") if name == "mnli" else ("train", "validation", "test")
    _task(f"glue_{name}_v002", tfds(f"glue/{name}", "2.0.0", splits), [fmt], fns, _labels(labels))
    if name in local:
      _task(f"glue_{name}_local", local[name], [fmt], fns, _labels(labels))
  labels, fns = GLUE["mnli"]
  for name, builder in MNLI_EVAL.items():
    _task(f"glue_{name}_v002", tfds(builder, "2.0.0", ("validation", "test")),
          [formats.glue("mnli", labels)], fns, _labels(labels))
  stsb = [metrics.pearson_corrcoef, metrics.spearman_corrcoef]
  _task("glue_stsb_v002", tfds("glue/stsb", "2.0.0"), [formats.stsb()], stsb,
        post.string_to_float)
  _task("glue_stsb_local", local["stsb"], [formats.stsb()], stsb, post.string_to_float)
  # WNLI in the Winograd format of §2.4, for evaluation, scored like WSC.
  wnli = ([formats.wnli_winograd()], [metrics.accuracy], post.wsc_simple)
  _task("glue_wnli_winograd_v002", tfds("glue/wnli", "2.0.0", ("validation", "test")), *wnli)
  _task("glue_wnli_winograd_local", local["wnli"], *wnli)


def register_super_glue():
  local = local_sources.super_glue()
  for name, (labels, fns) in SUPER_GLUE.items():
    fmt = formats.glue(name, labels, ("sentence1", "sentence2", "word") if name == "wic"
                       else None)
    _task(f"super_glue_{name}_v102", tfds(f"super_glue/{name}", "1.0.2"), [fmt], fns,
          _labels(labels))
    _task(f"super_glue_{name}_local", local[name], [fmt], fns, _labels(labels))
  multirc = ([formats.glue("multirc", ["False", "True"], ("question", "answer", "paragraph"))],
             [metrics.multirc], post.multirc)
  _task("super_glue_multirc_v102", tfds("super_glue/multirc", "1.0.2"), *multirc)
  _task("super_glue_multirc_local", local["multirc"], *multirc)
  record = ([formats.record], [metrics.record], post.record)
  _task("super_glue_record_v102", tfds("super_glue/record", "1.0.2"), *record)
  _task("super_glue_record_local", local["record"], *record)
  # WSC trains only on rows whose candidate is the referent and evaluates on all (§2.4).
  wsc = ([_by_split(formats.wsc(correct_referent_only=True), formats.wsc())],
         [metrics.accuracy], post.wsc_simple)
  _task("super_glue_wsc_v102", tfds("super_glue/wsc.fixed", "1.0.2"), *wsc)
  _task("super_glue_wsc_local", local["wsc"], *wsc)
  # DPR in the same format; the paper trains WSC together with it (§2.4).
  _task("dpr_v001_simple", src.TfdsSource("definite_pronoun_resolution:1.1.0",
                                          ("train", "test")),
        [formats.dpr()], [metrics.accuracy])
  registry.add_mixture(registry.Mixture("super_glue_wsc_and_dpr",
                                        ["super_glue_wsc_v102", "dpr_v001_simple"]))


class _BySplit:
  """One preprocessor for the training split, another for the rest (a Task passes ``split``)."""

  def __init__(self, train_fn, eval_fn):
    self.train_fn, self.eval_fn = train_fn, eval_fn

  def __call__(self, dataset, split="train"):
    return (self.train_fn if split == "train" else self.eval_fn)(dataset)


def _by_split(train_fn, eval_fn):
  return _BySplit(train_fn, eval_fn)


def register_generation():
  squad = ([formats.squad()], [metrics.squad], post.qa)
  _task("squad_v010", src.TfdsSource("squad/v1.1:3.0.0", ("train", "validation")), *squad)
  _task("squad_v010_local", local_sources.squad(), *squad)
  rouge = [metrics.rouge]
  _task("cnn_dailymail_v002", src.TfdsSource("cnn_dailymail:3.4.0"), [formats.summarize()],
        rouge)
  _task("cnn_dailymail_local", local_sources.cnn_dailymail(), [formats.summarize()], rouge)
  bleu = [metrics.bleu]
  for pair, builder, split in (("de", "wmt_t2t_translate/de-en:1.0.0", "validation"),
                               ("fr", "wmt14_translate/fr-en:1.0.0", "validation"),
                               ("ro", "wmt16_translate/ro-en:1.0.0", "validation")):
    _task(f"wmt_t2t_ende_v003" if pair == "de" else f"wmt{'14' if pair == 'fr' else '16'}_en"
          f"{pair}_v003", src.TfdsSource(builder, ("train", split, "test")),
          [formats.translate("en", pair)], bleu)
  for pair, source in local_sources.translation().items():
    source_lang, target_lang = pair.split("_")[:2]
    _task(f"translate_{pair}_local", source, [formats.translate(source_lang, target_lang)], bleu)


def register_mixtures():
  glue_local = [f"glue_{n}_local" for n in ("cola", "sst2", "mrpc", "stsb", "rte", "wnli")]
  sg_local = [f"super_glue_{n}_local" for n in
              ("boolq", "cb", "copa", "multirc", "record", "rte", "wic", "wsc")]
  registry.add_mixture(registry.Mixture("glue_local", glue_local,
                                        rates=mixing.rate_fn("proportional:2**19")))
  registry.add_mixture(registry.Mixture("super_glue_local", sg_local,
                                        rates=mixing.rate_fn("proportional:2**19")))
  # §2.3: all subtasks of a benchmark as one task, sampled examples-proportionally, with the
  # released rates (GLUE_RATES; tests/test_oracle_mixtures.py).
  for name, rates in (("glue_v002_proportional", GLUE_RATES),
                      ("super_glue_v102_proportional", SUPER_GLUE_RATES)):
    registry.add_mixture(registry.Mixture(name, list(rates), rates=list(rates.values())))
  default = ["glue_sst2_local", "glue_rte_local", "super_glue_boolq_local",
             "super_glue_cb_local", "squad_v010_local", "cnn_dailymail_local",
             "translate_en_de_local"]
  registry.add_mixture(registry.Mixture("default_finetune_local", default,
                                        rates=mixing.rate_fn("proportional:2**12")))
  # The embedded default (experiments/default_run.py): tasks a tiny model can learn in minutes.
  # Not RTE: at this size it stays at chance, and its long pairs took 38% of the packed tokens;
  # without it SST-2's share rises from 35% to 56% in the same time.
  registry.add_mixture(registry.Mixture(
      "embedded_default_local", ["glue_sst2_local", "translate_en_de_local"],
      rates=mixing.rate_fn("proportional:2**12")))


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
  def add(name, names):
    registry.add_mixture(registry.Mixture(name, names, rates=multitask_rates(
        "proportional:2**19", names, unbounded=("local_span_corruption",))))
  add("multitask_local", tasks)
  add("multitask_local_with_pretraining", ["local_span_corruption"] + tasks)
  for left_out in tasks:
    add(f"leave_one_out_{left_out}",
        ["local_span_corruption"] + [t for t in tasks if t != left_out])


def expand_mixtures(names):
  """Task names with each mixture among them (GLUE, SuperGLUE: one task each for fine-tuning,
  §2.3) replaced by its tasks, as the released multi-task mixtures list them."""
  out = []
  for name in names:
    item = registry.get_mixture_or_task(name)
    out += [t.name for t in item.tasks] if isinstance(item, registry.Mixture) else [name]
  return out


def multitask_rates(spec, names, limit=2**21, unbounded=()):
  """``mixing.rate_fn(spec)`` for a multi-task mixture of ``names`` as the released
  all_proportional and leave-one-out mixtures build it: GLUE's and SuperGLUE's tasks count
  their released fixed weights (GLUE_RATES), and GLUE's and SuperGLUE's RTE, the same data,
  count half each when both are in (the released _dedupe; not in "equal", as all_equal)."""
  rtes = [n for n in names if "glue" in n and "rte" in n]
  return mixing.rate_fn(spec, limit, unbounded, counts={**GLUE_RATES, **SUPER_GLUE_RATES},
                        halved=rtes if len(rtes) == 2 else ())


def register():
  register_glue()
  register_super_glue()
  register_generation()
  register_mixtures()
  register_strategy_mixtures()
