"""The embedded default's report: both fine-tunings side by side, valid-output rates, the
majority-class rate and example outputs (run here at a sliver of its steps)."""
import json

import pytest

from t5mtf.data import registry
from t5mtf.experiments import default_run, experiment


def test_valid_outputs_are_labels_numbers_or_text():
  sst2, stsb = registry.get_task("glue_sst2_local"), registry.get_task("glue_stsb_local")
  ende = registry.get_task("translate_en_de_local")
  assert default_run.is_valid(sst2, "positive") and default_run.is_valid(sst2, "negative")
  assert not default_run.is_valid(sst2, "Positive") and not default_run.is_valid(sst2, "")
  assert not default_run.is_valid(sst2, "entailment")  # Another task's label.
  assert default_run.is_valid(stsb, "3.4") and not default_run.is_valid(stsb, "three")
  assert default_run.is_valid(ende, "Hallo") and not default_run.is_valid(ende, " ")


@pytest.mark.slow
def test_default_run_reports_both_fine_tunings(tmp_path, monkeypatch):
  monkeypatch.setattr(default_run, "EVAL_MAX_EXAMPLES", 8)
  results = default_run.run(str(tmp_path), pretrain_steps=4, finetune_steps=4)
  assert set(results) == {"pre-trained", "no pre-training"}
  for result in results.values():
    assert set(result["tasks"]) == {"glue_sst2_local", "translate_en_de_local"}
    assert 0 < result["heldout_loss"] < 20
    sst2 = result["tasks"]["glue_sst2_local"]
    assert 0 <= sst2["valid"] <= 1 and 0.5 <= sst2["majority"] <= 1 and sst2["count"] == 8
    assert all(0 < t["loss"] < 20 for t in result["tasks"].values())
    assert result["tasks"]["translate_en_de_local"]["majority"] is None
  assert results["pre-trained"]["heldout_loss"] != results["no pre-training"]["heldout_loss"]
  # The overall loss is the token-weighted mean of the per-task losses, and the one the tables'
  # Loss column computes (experiment.heldout_nll) for the same checkpoint and examples.
  scratch = results["no pre-training"]
  weighted = sum(t["loss"] * t["tokens"] for t in scratch["tasks"].values())
  assert weighted / sum(t["tokens"] for t in scratch["tasks"].values()) == pytest.approx(
      scratch["heldout_loss"], rel=1e-6)
  nll, tokens = experiment.heldout_nll(default_run.finetune_settings(str(tmp_path), "", 4))
  assert nll / tokens == pytest.approx(scratch["heldout_loss"], rel=1e-5)
  text = (tmp_path / "results.md").read_text()
  assert "| pre-trained |" in text and "| no pre-training |" in text
  assert "### Examples" in text and "sst2 sentence:" in text
  stored = json.loads((tmp_path / "results.json").read_text())
  assert stored["runs"]["pre-trained"]["tasks"]["glue_sst2_local"]["examples"]
  assert (tmp_path / "loss_curve.png").stat().st_size > 0
  assert (tmp_path / "no_pretraining").is_dir() and (tmp_path / "pretrain").is_dir()
