import functools

import numpy as np
import pytest

from t5mtf.data import objectives, preprocessors as prep, registry, sources
from tests import helpers


def make_task(tmp_path, name="toy"):
  f = tmp_path / "toy.txt"
  f.write_text("\n".join(" ".join(str(3 + (i * 7 + j) % 80) for j in range(5 + i % 20))
                         for i in range(50)))
  return registry.Task(name, sources.TextLineSource({"train": str(f)}),
                       [functools.partial(prep.rekey, key_map={"targets": "text"}),
                        prep.tokenize, objectives.span_corruption],
                       output_features=helpers.mock_features())


def test_task_pipeline_appends_eos_and_trims(clean_registry, tmp_path):
  task = registry.add_task(make_task(tmp_path))
  exs = list(task.get_dataset({"inputs": 10, "targets": 6}, shuffle=False).as_numpy_iterator())
  assert len(exs) == 50
  for ex in exs:
    assert ex["inputs"][-1] == 1 and ex["targets"][-1] == 1
    assert len(ex["inputs"]) <= 10 and len(ex["targets"]) <= 6


def test_same_seed_same_data_other_seed_other_data(clean_registry, tmp_path):
  task = registry.add_task(make_task(tmp_path))
  get = lambda seed: [ex["inputs"].tolist() for ex in
                      task.get_dataset({"inputs": 64, "targets": 64}, seed=seed).take(20)
                      .as_numpy_iterator()]
  assert get(1) == get(1)
  assert get(1) != get(2)


def test_resuming_at_a_step_sees_the_same_examples(clean_registry, tmp_path):
  task = registry.add_task(make_task(tmp_path))
  ds = lambda: task.get_dataset({"inputs": 64, "targets": 64}, seed=3, num_epochs=None)
  full = [ex["inputs"].tolist() for ex in ds().take(130).as_numpy_iterator()]
  resumed = [ex["inputs"].tolist() for ex in ds().skip(100).take(30).as_numpy_iterator()]
  assert resumed == full[100:]


def test_unknown_name_lists_closest(clean_registry, tmp_path):
  registry.add_task(make_task(tmp_path, "toy_cola_task"))
  with pytest.raises(ValueError, match="did you mean.*toy_cola_task"):
    registry.get_mixture_or_task("toy_cloa_task")


def test_duplicate_registration_is_an_error(clean_registry, tmp_path):
  registry.add_task(make_task(tmp_path))
  with pytest.raises(ValueError, match="already registered"):
    registry.add_task(make_task(tmp_path))


def test_mixture_draws_from_its_tasks(clean_registry, tmp_path):
  a = registry.add_task(make_task(tmp_path, "a"))
  registry.add_task(make_task(tmp_path, "b"))
  mix = registry.add_mixture(registry.Mixture("ab", ["a", "b"], rates=[1.0, 0.0]))
  got = [ex["inputs"].tolist() for ex in
         mix.get_dataset({"inputs": 64, "targets": 64}, seed=0).take(5).as_numpy_iterator()]
  assert len(got) == 5
  assert mix.rates() == [1.0, 0.0]


def test_builtin_local_span_corruption_lengths():
  task = registry.get_task("local_span_corruption")
  exs = list(task.get_dataset({"inputs": 512, "targets": 114}, seed=0).take(50)
             .as_numpy_iterator())
  assert all(len(ex["inputs"]) == 512 and len(ex["targets"]) == 114 for ex in exs)


def test_table_6_and_7_variants_are_tasks():
  task = registry.get_task("local_span_corruption_r50_s10")
  exs = list(task.get_dataset({"inputs": 128, "targets": 128}, seed=0).take(20)
             .as_numpy_iterator())
  noise = [len(ex["targets"]) for ex in exs]
  base = [len(ex["targets"]) for ex in registry.get_task("local_span_corruption").get_dataset(
      {"inputs": 128, "targets": 128}, seed=0).take(20).as_numpy_iterator()]
  assert min(noise) > max(base), "50% corruption makes longer targets than 15%"
  assert all(len(ex["inputs"]) <= 128 for ex in exs)
  assert "local_iid_replace_spans_r25" in registry.task_names()
