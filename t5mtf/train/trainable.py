"""Which parameters train (§3.5.1): all; only adapters (and layer norms); or gradual unfreezing.

Gradual unfreezing: fine-tuning is split into episodes; at first only the top block of each stack
trains, and each episode adds the next block down, encoder and decoder in parallel. The
embedding and the final layer norms always train (§3.5.1 lets the output layer train throughout).
"""
import re

import mesh_tensorflow as mtf
import tensorflow.compat.v1 as tf


def _block_index(name):
  m = re.search(r"block_(\d+)/", name)
  return int(m.group(1)) if m else None


def unfreeze_step(name, num_layers, episode_steps):
  """The step at which variable ``name`` starts to train (0 for always-trained ones)."""
  block = _block_index(name)
  if block is None:
    return 0
  return (num_layers - 1 - block) * episode_steps


def is_adapter_trainable(name):
  return "/adapter/" in name or "layer_norm" in name or "rms_norm" in name


def gate_gradients(settings, variables, grads, step):
  """Drops (adapters) or zeroes until their episode (gradual unfreezing) frozen gradients."""
  mode = settings.trainable
  if mode == "all":
    return grads
  if mode == "adapters":
    return [g if is_adapter_trainable(v.name) else None for g, v in zip(grads, variables)]
  if mode == "gradual_unfreezing":
    layers = max(settings.model.num_encoder_layers, settings.model.num_decoder_layers)
    out = []
    for g, v in zip(grads, variables):
      start = unfreeze_step(v.name, layers, settings.unfreeze_episode_steps)
      if g is None or start == 0:
        out.append(g)
        continue
      on = tf.cast(step >= start, g.dtype)
      out.append(g * mtf.import_fully_replicated(g.mesh, on, mtf.Shape([])))
    return out
  raise ValueError(f"RunSettings.trainable={mode!r} is not one of "
                   "['all', 'adapters', 'gradual_unfreezing']")
