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
