"""Converters: bit-exact round trips, and errors that name the file and variable."""
import json
import os

import numpy as np
import pytest

from t5mtf import convert
from t5mtf.models import variables
from tests import model_helpers as mh

V11 = dict(ffn_activation="gated-gelu", tie_embeddings=False, norm_name="rms_norm")


def random_arrays(config, seed=0):
  rng = np.random.RandomState(seed)
  return {n: rng.normal(size=s).astype(np.float32)
          for n, s in variables.expected_shapes(config).items()}


@pytest.mark.parametrize("extra", [{}, V11], ids=["v1.0", "v1.1"])
def test_round_trip_ours_hf_checkpoint_is_bit_exact(extra, tmp_path):
  config = mh.tiny_config(**extra)
  arrays = random_arrays(config)
  convert.write_hf_dir(arrays, config, tmp_path / "hf")
  c2, hf = convert.read_hf_dir(tmp_path / "hf")
  assert c2 == config.__class__(**{**vars(config), "dropout_rate": c2.dropout_rate})
  back = convert.hf_to_ours(hf, c2)
  assert back.keys() == arrays.keys()
  for k in arrays:
    assert np.array_equal(back[k], arrays[k]), k
  convert.write_checkpoint(back, tmp_path / "ckpt", c2)
  again = convert.read_checkpoint(str(tmp_path / "ckpt"), c2)
  for k in arrays:
    assert np.array_equal(again[k], arrays[k]), k
  assert (tmp_path / "ckpt" / "model.gin").exists()


def test_cli_round_trip(tmp_path):
  config = mh.tiny_config()
  convert.write_hf_dir(random_arrays(config), config, tmp_path / "hf")
  convert.main([f"--from_hf={tmp_path / 'hf'}", f"--to_checkpoint={tmp_path / 'ck'}"])
  convert.main([f"--from_checkpoint={tmp_path / 'ck'}", f"--to_hf={tmp_path / 'hf2'}"])
  from safetensors.numpy import load_file
  a, b = load_file(tmp_path / "hf" / "model.safetensors"), load_file(
      tmp_path / "hf2" / "model.safetensors")
  assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_directory_without_config(tmp_path):
  (tmp_path / "m").mkdir()
  with pytest.raises(convert.ConversionError, match="no config.json"):
    convert.read_hf_dir(tmp_path / "m")


def test_unknown_and_mismatched_variables_named(tmp_path):
  config = mh.tiny_config()
  hf = convert.ours_to_hf(random_arrays(config), config)
  with pytest.raises(convert.ConversionError, match="unknown variable 'encoder.extra.weight'"):
    convert.hf_to_ours({**hf, "encoder.extra.weight": np.zeros(3, np.float32)}, config)
  bad = dict(hf)
  bad["shared.weight"] = np.zeros((128, 16), np.float32)
  with pytest.raises(convert.ConversionError,
                     match=r"'shared/embedding' has shape \[128, 16\], the config expects "
                           r"\[128, 32\]"):
    convert.hf_to_ours(bad, config)


def test_not_a_safetensors_file_writes_nothing(tmp_path):
  d = tmp_path / "hf"
  d.mkdir()
  (d / "config.json").write_text(json.dumps(convert.hf_config(mh.tiny_config())))
  (d / "model.safetensors").write_bytes(b"garbage")
  with pytest.raises(SystemExit, match="not a safetensors file"):
    convert.main([f"--from_hf={d}", f"--to_checkpoint={tmp_path / 'out'}"])
  assert not (tmp_path / "out").exists()
  assert not [p for p in os.listdir(tmp_path) if p.startswith(".convert-")]


def test_not_a_checkpoint(tmp_path):
  with pytest.raises(FileNotFoundError, match="no checkpoint"):
    convert.read_checkpoint(str(tmp_path))


T5X = "data/checkpoints/test_t5_tiny.checkpoint_0"


def test_t5x_checkpoint_converts_bit_exactly_and_runs(tmp_path):
  tree = convert._flatten(convert.read_msgpack(T5X)["optimizer"]["target"])
  config, ours = convert.t5x_to_ours(T5X)
  assert (config.d_model, config.num_heads, config.d_kv, config.d_ff) == (8, 4, 3, 16)
  assert config.ffn_activation == "gated-gelu" and not config.tie_embeddings
  assert np.array_equal(ours["shared/embedding"], tree["token_embedder/embedding"])
  assert np.array_equal(ours["decoder/block_001/layer_001/EncDecAttention/o"],
                        tree["decoder/layers_1/encoder_decoder_attention/out/kernel"])
  assert np.array_equal(ours["encoder/block_000/layer_000/SelfAttention/relative_attention_bias"],
                        tree["encoder/relpos_bias/rel_embedding"])
  convert.main([f"--from_t5x={T5X}", f"--to_checkpoint={tmp_path / 'ck'}"])
  back = convert.read_checkpoint(str(tmp_path / "ck"), config)
  assert all(np.array_equal(back[k], ours[k]) for k in ours)
  # The converted weights run in our model: finite per-token log-likelihoods.
  feats = {"inputs": np.array([[5, 6, 7, 1]], np.int32), "targets": np.array([[8, 9, 1]],
                                                                              np.int32)}
  feats.update({k + "_segment_ids": np.ones_like(v) for k, v in list(feats.items())})

  def build(model, f, graph):
    return {"ll": model.loss(f, train=False)[1]}
  loaded = mh.run_graph(config, build, feats, values=ours)["ll"]
  fresh = mh.run_graph(config, build, feats)["ll"]
  assert np.isfinite(loaded).all() and not np.allclose(loaded, fresh)


def test_not_a_msgpack_checkpoint(tmp_path):
  bad = tmp_path / "checkpoint_1"
  bad.write_bytes(b"\x93\x01\x02")  # A msgpack array, not a map.
  with pytest.raises(convert.ConversionError, match="not a flax msgpack checkpoint"):
    convert.t5x_to_ours(str(bad))


def test_outputs_follow_the_umask(tmp_path):
  """Staged outputs are renamed into place with an ordinary new folder's mode (not 0700)."""
  import os
  from t5mtf.train import checkpoints
  old = os.umask(0o022)
  try:
    checkpoints.write_checkpoint({"x": np.zeros(2, np.float32)}, tmp_path / "out")
  finally:
    os.umask(old)
  assert (os.stat(tmp_path / "out").st_mode & 0o777) == 0o755
