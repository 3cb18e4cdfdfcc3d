"""Converters between our checkpoints (the released Mesh-TF names) and Hugging Face T5 weights.

    python -m t5mtf.convert --from_hf=DIR --to_checkpoint=DIR        # writes model.ckpt + model.gin
    python -m t5mtf.convert --from_checkpoint=DIR --to_hf=DIR [--gin_file=models/base.gin]
    python -m t5mtf.convert --from_t5x=checkpoint_0 --to_checkpoint=DIR

Hugging Face weights are read from ``model.safetensors`` (numpy; no torch needed) or, failing
that, ``pytorch_model.bin`` through ``torch.load(weights_only=True)`` (no pickled code runs).
Round trips are bit-exact: only transposes, never arithmetic. Output goes to a temporary folder
renamed into place, so a failed conversion leaves nothing under the output name.
"""
import json
import os

import numpy as np

from t5mtf.models import config as config_lib
from t5mtf.models import variables as variables_lib
from t5mtf.train import checkpoints


class ConversionError(ValueError):
  pass


# -- names ----------------------------------------------------------------------------------------


def name_map(c):
  """[(our name, hf name, transpose)] for config ``c``; the inverse of each other."""
  out = [("shared/embedding", "shared.weight", False)]
  if not c.tie_embeddings:
    out.append(("decoder/logits/kernel", "lm_head.weight", True))
  norm = c.norm_name
  ffn_in = ["wi_0", "wi_1"] if c.ffn_activation == "gated-gelu" else ["wi"]
  for stack, n_layers in (("encoder", c.num_encoder_layers), ("decoder", c.num_decoder_layers)):
    hf_stack = stack
    final = "final_layer_norm" if norm == "layer_norm" else "rms_norm"
    out.append((f"{stack}/{final}/scale", f"{hf_stack}.final_layer_norm.weight", False))
    out.append((f"{stack}/block_000/layer_000/SelfAttention/relative_attention_bias",
                f"{hf_stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight", True))
    for i in range(n_layers):
      ours, hf = f"{stack}/block_{i:03d}", f"{hf_stack}.block.{i}"
      attn = [("layer_000", "0", "SelfAttention")]
      if stack == "decoder":
        attn.append(("layer_001", "1", "EncDecAttention"))
      for layer, hf_layer, kind in attn:
        out.append((f"{ours}/{layer}/{norm}/scale", f"{hf}.layer.{hf_layer}.layer_norm.weight",
                    False))
        for w in "qkvo":
          out.append((f"{ours}/{layer}/{kind}/{w}", f"{hf}.layer.{hf_layer}.{kind}.{w}.weight",
                      True))
      layer, hf_layer = ("layer_002", "2") if stack == "decoder" else ("layer_001", "1")
      out.append((f"{ours}/{layer}/{norm}/scale", f"{hf}.layer.{hf_layer}.layer_norm.weight",
                  False))
      for w in ffn_in + ["wo"]:
        out.append((f"{ours}/{layer}/DenseReluDense/{w}/kernel",
                    f"{hf}.layer.{hf_layer}.DenseReluDense.{w}.weight", True))
  return out


def ours_to_hf(arrays, c):
  expected = variables_lib.expected_shapes(c)
  _check(arrays, expected, "our checkpoint")
  return {hf: (np.ascontiguousarray(arrays[ours].T) if t else arrays[ours])
          for ours, hf, t in name_map(c)}


def hf_to_ours(arrays, c, source="Hugging Face weights"):
  mapping = name_map(c)
  known = {hf for _, hf, _ in mapping} | {"encoder.embed_tokens.weight",
                                          "decoder.embed_tokens.weight"}
  if c.tie_embeddings:
    known.add("lm_head.weight")  # Some exports store the tied head too.
  unknown = sorted(set(arrays) - known)
  if unknown:
    raise ConversionError(f"{source}: unknown variable {unknown[0]!r} "
                          f"({len(unknown)} unknown in all)")
  missing = [hf for _, hf, _ in mapping if hf not in arrays]
  if missing:
    raise ConversionError(f"{source}: missing variable {missing[0]!r}")
  out = {ours: (np.ascontiguousarray(arrays[hf].T) if t else arrays[hf])
         for ours, hf, t in mapping}
  _check(out, variables_lib.expected_shapes(c), source)
  return out


def _check(arrays, expected, source):
  for name, shape in expected.items():
    if name not in arrays:
      raise ConversionError(f"{source}: missing variable {name!r}")
    if list(arrays[name].shape) != list(shape):
      raise ConversionError(f"{source}: variable {name!r} has shape {list(arrays[name].shape)}, "
                            f"the config expects {shape}")


# -- configs ---------------------------------------------------------------------------------------


def hf_config(c):
  return {
      "architectures": ["T5ForConditionalGeneration"], "model_type": "t5",
      "vocab_size": c.vocab_size, "d_model": c.d_model, "d_kv": c.d_kv, "d_ff": c.d_ff,
      "num_layers": c.num_encoder_layers, "num_decoder_layers": c.num_decoder_layers,
      "num_heads": c.num_heads, "relative_attention_num_buckets":
      c.relative_attention_num_buckets, "relative_attention_max_distance":
      c.relative_attention_max_distance, "dropout_rate": c.dropout_rate,
      "layer_norm_epsilon": c.layer_norm_epsilon, "feed_forward_proj": c.ffn_activation,
      "tie_word_embeddings": c.tie_embeddings, "is_encoder_decoder": True,
      "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0,
  }


def config_from_hf(d, source="config.json"):
  try:
    proj = d.get("feed_forward_proj", "relu")
    return config_lib.ModelConfig(
        vocab_size=d["vocab_size"], d_model=d["d_model"], d_kv=d["d_kv"], d_ff=d["d_ff"],
        num_heads=d["num_heads"], num_encoder_layers=d["num_layers"],
        num_decoder_layers=d.get("num_decoder_layers") or d["num_layers"],
        relative_attention_num_buckets=d.get("relative_attention_num_buckets", 32),
        relative_attention_max_distance=d.get("relative_attention_max_distance", 128),
        dropout_rate=d.get("dropout_rate", 0.1),
        layer_norm_epsilon=d.get("layer_norm_epsilon", 1e-6),
        ffn_activation="gated-gelu" if proj.startswith("gated") else "relu",
        tie_embeddings=d.get("tie_word_embeddings", True),
        norm_name="rms_norm" if proj.startswith("gated") else "layer_norm")
  except KeyError as e:
    raise ConversionError(f"{source}: missing {e}") from None


# -- files -----------------------------------------------------------------------------------------


def read_hf_dir(path):
  """-> (ModelConfig, {hf name: array})."""
  cfg_path = os.path.join(path, "config.json")
  if not os.path.isfile(cfg_path):
    raise ConversionError(f"{path}: no config.json (is it a Hugging Face model directory?)")
  with open(cfg_path) as f:
    try:
      config = config_from_hf(json.load(f), cfg_path)
    except json.JSONDecodeError as e:
      raise ConversionError(f"{cfg_path}: not JSON ({e.msg})") from None
  st = os.path.join(path, "model.safetensors")
  pt = os.path.join(path, "pytorch_model.bin")
  if os.path.isfile(st):
    from safetensors.numpy import load_file
    try:
      arrays = load_file(st)
    except Exception as e:  # safetensors raises its own error types.
      raise ConversionError(f"{st}: not a safetensors file ({e})") from None
  elif os.path.isfile(pt):
    try:
      import torch
    except ImportError:
      raise ConversionError(f"{pt}: reading .bin needs torch; convert to safetensors") from None
    state = torch.load(pt, map_location="cpu", weights_only=True)
    arrays = {k: v.float().numpy() for k, v in state.items()}
  else:
    raise ConversionError(f"{path}: neither model.safetensors nor pytorch_model.bin")
  return config, {k: np.asarray(v, np.float32) for k, v in arrays.items()}


def write_hf_dir(arrays, c, out_dir):
  from safetensors.numpy import save_file
  with checkpoints.staging(out_dir) as tmp:
    save_file({k: np.asarray(v, np.float32) for k, v in ours_to_hf(arrays, c).items()},
              os.path.join(tmp, "model.safetensors"))
    with open(os.path.join(tmp, "config.json"), "w") as f:
      json.dump(hf_config(c), f, indent=2)


def read_checkpoint(path, c=None):
  """Model variables of a TF checkpoint -> {name: array} (``train.checkpoints`` reads them)."""
  return checkpoints.read_checkpoint(path, c)


def write_checkpoint(arrays, out_dir, c=None, step=0):
  """A TF checkpoint with exactly these variables (+ global_step) and, given a config, a
  model.gin beside it."""
  extra = {"model.gin": config_lib.gin_text(c, "t5mtf.convert")} if c is not None else None
  checkpoints.write_checkpoint(arrays, out_dir, step, extra)


# -- T5X / flax msgpack checkpoints ----------------------------------------------------------------


def read_msgpack(path):
  """A flax-serialised (msgpack) checkpoint -> nested dict of numpy arrays; no code runs."""
  import msgpack

  def ext_hook(code, data):
    if code != 1:  # flax encodes ndarrays as ext type 1: (shape, dtype, bytes).
      raise ConversionError(f"{path}: unsupported msgpack extension type {code}")
    shape, dtype, buffer = msgpack.unpackb(data, raw=False)
    return np.frombuffer(buffer, dtype=np.dtype(dtype)).reshape(shape)
  try:
    with open(path, "rb") as f:
      tree = msgpack.unpackb(f.read(), ext_hook=ext_hook, raw=False, strict_map_key=False)
  except (msgpack.exceptions.ExtraData, msgpack.exceptions.UnpackException, ValueError,
          TypeError) as e:
    raise ConversionError(f"{path}: not a flax msgpack checkpoint ({e})") from None
  if not isinstance(tree, dict):
    raise ConversionError(f"{path}: not a flax msgpack checkpoint (top level is not a map)")
  return tree


def _flatten(tree, prefix=""):
  out = {}
  for k, v in tree.items():
    key = f"{prefix}/{k}" if prefix else str(k)
    out.update(_flatten(v, key) if isinstance(v, dict) else {key: v})
  return out


T5X_LAYER_NAMES = {
    "encoder": {"pre_attention_layer_norm": "layer_000/{norm}",
                "attention": "layer_000/SelfAttention", "pre_mlp_layer_norm": "layer_001/{norm}",
                "mlp": "layer_001/DenseReluDense"},
    "decoder": {"pre_self_attention_layer_norm": "layer_000/{norm}",
                "self_attention": "layer_000/SelfAttention",
                "pre_cross_attention_layer_norm": "layer_001/{norm}",
                "encoder_decoder_attention": "layer_001/EncDecAttention",
                "pre_mlp_layer_norm": "layer_002/{norm}", "mlp": "layer_002/DenseReluDense"},
}
T5X_ATTENTION = {"query": "q", "key": "k", "value": "v", "out": "o"}


def t5x_to_ours(path):
  """-> (ModelConfig, {our name: array}) from a T5X checkpoint's ``target`` parameters."""
  tree = read_msgpack(path)
  params = tree.get("optimizer", {}).get("target") or tree.get("target") or tree.get("params")
  if not isinstance(params, dict):
    raise ConversionError(f"{path}: no optimizer/target parameters found")
  flat = _flatten(params)
  config = _t5x_config(flat, path)
  norm = config.norm_name
  out = {}
  for name, value in flat.items():
    out[_t5x_name(name, norm, path)] = np.asarray(value, np.float32)
  _check(out, variables_lib.expected_shapes(config), path)
  return config, out


def _t5x_name(name, norm, path):
  parts = name.split("/")
  if parts == ["token_embedder", "embedding"]:
    return "shared/embedding"
  stack = parts[0]
  if parts[1:] == ["relpos_bias", "rel_embedding"]:
    return f"{stack}/block_000/layer_000/SelfAttention/relative_attention_bias"
  if parts[1:] in (["encoder_norm", "scale"], ["decoder_norm", "scale"]):
    final = "final_layer_norm" if norm == "layer_norm" else "rms_norm"
    return f"{stack}/{final}/scale"
  if parts[1:] == ["logits_dense", "kernel"]:
    return "decoder/logits/kernel"
  if stack in T5X_LAYER_NAMES and parts[1].startswith("layers_") and \
      parts[2] in T5X_LAYER_NAMES[stack]:
    block = f"{stack}/block_{int(parts[1][len('layers_'):]):03d}"
    base = T5X_LAYER_NAMES[stack][parts[2]].format(norm=norm)
    rest = parts[3:]
    if base.endswith("Attention") and rest[0] in T5X_ATTENTION:
      return f"{block}/{base}/{T5X_ATTENTION[rest[0]]}"
    return "/".join([block, base] + rest)
  raise ConversionError(f"{path}: unknown variable {name!r}")


def _t5x_config(flat, path):
  try:
    emb = flat["token_embedder/embedding"]
    heads, buckets = flat["encoder/relpos_bias/rel_embedding"].shape
    q = flat["encoder/layers_0/attention/query/kernel"]
  except KeyError as e:
    raise ConversionError(f"{path}: missing variable {e}") from None
  gated = "encoder/layers_0/mlp/wi_0/kernel" in flat
  d_ff = flat["encoder/layers_0/mlp/" + ("wi_0" if gated else "wi") + "/kernel"].shape[1]
  count = lambda stack: len({k.split("/")[1] for k in flat
                             if k.startswith(stack + "/layers_")})
  return config_lib.ModelConfig(
      vocab_size=emb.shape[0], d_model=emb.shape[1], d_ff=d_ff, num_heads=heads,
      d_kv=q.shape[1] // heads, num_encoder_layers=count("encoder"),
      num_decoder_layers=count("decoder"), relative_attention_num_buckets=buckets,
      ffn_activation="gated-gelu" if gated else "relu",
      tie_embeddings="decoder/logits_dense/kernel" not in flat,
      norm_name="rms_norm" if gated else "layer_norm", dropout_rate=0.0)


def main(argv=None):
  import argparse
  p = argparse.ArgumentParser(prog="python -m t5mtf.convert", description=__doc__.split("\n")[0])
  p.add_argument("--from_hf")
  p.add_argument("--from_checkpoint")
  p.add_argument("--from_t5x", help="a T5X/flax msgpack checkpoint file")
  p.add_argument("--to_checkpoint")
  p.add_argument("--to_hf")
  p.add_argument("--gin_file", action="append", default=[],
                 help="model gin for --from_checkpoint (default: model.gin beside it)")
  args = p.parse_args(argv)
  try:
    if args.from_hf and args.to_checkpoint:
      c, arrays = read_hf_dir(args.from_hf)
      write_checkpoint(hf_to_ours(arrays, c, args.from_hf), args.to_checkpoint, c)
      print(f"wrote {args.to_checkpoint} (model.ckpt-0, model.gin)")
    elif args.from_t5x and args.to_checkpoint:
      c, arrays = t5x_to_ours(args.from_t5x)
      write_checkpoint(arrays, args.to_checkpoint, c)
      print(f"wrote {args.to_checkpoint} (model.ckpt-0, model.gin)")
    elif args.from_checkpoint and args.to_hf:
      c = _config_for_checkpoint(args.from_checkpoint, args.gin_file)
      write_hf_dir(read_checkpoint(args.from_checkpoint, c), c, args.to_hf)
      print(f"wrote {args.to_hf} (config.json, model.safetensors)")
    else:
      p.error("give --from_hf or --from_t5x with --to_checkpoint, or --from_checkpoint with "
              "--to_hf")
  except (ConversionError, checkpoints.OutputExistsError, checkpoints.CheckpointMismatchError,
          FileNotFoundError) as e:
    raise SystemExit(f"error: {e}")


def _config_for_checkpoint(path, gin_files):
  from t5mtf import config_gin
  folder = path if os.path.isdir(path) else os.path.dirname(path)
  if not gin_files and os.path.isfile(os.path.join(folder, "model.gin")):
    gin_files = [os.path.join(folder, "model.gin")]
  if not gin_files:
    raise ConversionError(f"{path}: no model.gin beside it; pass --gin_file=models/<size>.gin")
  return config_gin.settings_from_gin(gin_files, [], "/tmp/unused").model


if __name__ == "__main__":
  from t5mtf import cli
  cli.guarded(main)()
