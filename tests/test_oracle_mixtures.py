"""The GLUE and SuperGLUE mixtures (§2.3: a benchmark's tasks fine-tuned as one) against the
released ones (seqio's registry after ``import t5.data.mixtures``, in the original t5 venv):
the same tasks, sampled at the same rates. Our WSC task is the released pair
super_glue_wsc_v102_simple_train / _simple_eval (training on the correct referents only,
evaluating on all); the released diagnostic tasks (AX, AX-b, AX-g) have rate 0 and no
counterpart here."""
import pytest

from t5mtf.data import registry
from tests.peers import t5_env

pytestmark = pytest.mark.slow

OURS_AS_RELEASED = {"super_glue_wsc_v102": "super_glue_wsc_v102_simple_train"}


NAMES = ["glue_v002_proportional", "super_glue_v102_proportional"]


@pytest.fixture(scope="module")
def released():
  return dict(zip(NAMES, map(t5_env.ok, t5_env.ask([{"op": "mixture_rates", "name": n}
                                                     for n in NAMES]))))


@pytest.mark.parametrize("name", NAMES)
def test_benchmark_mixtures_sample_as_released(name, released):
  theirs = released[name]
  mixture = registry.get_mixture_or_task(name)
  ours = {OURS_AS_RELEASED.get(t.name, t.name): r
          for t, r in zip(mixture.tasks, mixture.rates())}
  unmatched = {t: r for t, r in theirs.items() if t not in ours}
  assert all(r == 0 for r in unmatched.values()), unmatched
  assert ours == {t: r for t, r in theirs.items() if t in ours}
  assert sum(r > 0 for r in ours.values()) >= 8


def test_rte_counts_half_in_a_mixture_with_both_rtes():
  """The released all_proportional halves GLUE's and SuperGLUE's RTE (the same data);
  leaving one of them out gives the other its whole rate."""
  def rates(name):
    m = registry.get_mixture_or_task(name)
    return dict(zip([t.name for t in m.tasks], m.rates()))
  both = rates("multitask_local")
  one = rates("leave_one_out_glue_rte_local")
  size = {n: registry.get_task(n).num_input_examples("train")
          for n in ("glue_rte_local", "super_glue_rte_local")}
  assert both["glue_rte_local"] == size["glue_rte_local"] / 2
  assert both["super_glue_rte_local"] == size["super_glue_rte_local"] / 2
  assert one["super_glue_rte_local"] == size["super_glue_rte_local"]
  assert both["glue_sst2_local"] == one["glue_sst2_local"] > 0


@pytest.fixture(scope="module")
def dedupe():
  """The released all_proportional's rate (_dedupe) and leave-one-out-of-GLUE's rate
  (assign_weight_or_rate_num_examples) of each GLUE and SuperGLUE task."""
  from t5mtf.data.tasks import downstream
  names = list(downstream.GLUE_RATES) + list(downstream.SUPER_GLUE_RATES)
  names = [OURS_AS_RELEASED.get(n, n) for n in names]
  jobs = [{"op": "call", "module": "t5.data.mixtures", "fn": fn, "args": [n]}
          for fn in ("_dedupe", "assign_weight_or_rate_num_examples") for n in names]
  answers = [t5_env.ok(a) for a in t5_env.ask(jobs)]
  return dict(zip(names, answers[:len(names)])), dict(zip(names, answers[len(names):]))


@pytest.mark.parametrize("k", [2**16, 2**21])
def test_paper_scale_multitask_mixtures_rate_glue_and_super_glue_as_released(k, dedupe):
  """A table row's multi-task mixtures at the paper scale, whose supervised tasks include the
  GLUE and SuperGLUE mixtures: their tasks enter with the released all_proportional's rates
  (fixed, not capped by K, both RTEs halved), and leaving GLUE out gives SuperGLUE's RTE its
  whole weight, as the released leave_one_out_glue_v002_proportional does."""
  import dataclasses
  from t5mtf.experiments import experiment
  scale = dataclasses.replace(experiment.Scale(), supervised_tasks=(
      "glue_v002_proportional", "super_glue_v102_proportional", "squad_v010_local"))
  row = type("Row", (), {"mixing": f"proportional:{k}"})()
  names = experiment.register_row_tasks(row, scale, "local_span_corruption")
  all_proportional, without_glue = dedupe

  def rates(name):
    m = registry.get_mixture_or_task(name)
    return {OURS_AS_RELEASED.get(t.name, t.name): r for t, r in zip(m.tasks, m.rates())}
  ours = rates(names["multitask"])
  assert {t: ours[t] for t in all_proportional} == all_proportional
  assert ours["local_span_corruption"] == k  # The unsupervised task is capped at K.
  ours = rates(names["leave_one_out"]("glue_v002_proportional"))
  assert not any(t.startswith("glue_") for t in ours)
  sg = {t: r for t, r in without_glue.items() if not t.startswith("glue_")}
  assert {t: ours[t] for t in sg} == sg
