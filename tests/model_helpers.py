"""Builds a tiny model's mtf graph, lowers it on a mesh and runs it (graph mode)."""
import zlib

import mesh_tensorflow as mtf
import numpy as np
import tensorflow.compat.v1 as tf

from t5mtf.models import config as config_lib
from t5mtf.models import layout as layout_lib
from t5mtf.models import partitioning, transformer


def tiny_config(**overrides):
  kw = dict(d_model=32, d_ff=64, num_heads=4, d_kv=8, num_encoder_layers=2, num_decoder_layers=2,
            vocab_size=128, dropout_rate=0.0)
  kw.update(overrides)
  return config_lib.ModelConfig(**kw)


def random_features(batch=4, inputs_length=16, targets_length=8, vocab=128, seed=0,
                    packed=True):
  """Generated token features; with ``packed``, rows hold two segments and padding."""
  rng = np.random.RandomState(seed)
  f = {}
  for name, length in (("inputs", inputs_length), ("targets", targets_length)):
    ids = rng.randint(2, vocab, (batch, length))
    seg = np.ones((batch, length), np.int32)
    if packed:
      cut, end = length // 3, length - 2
      seg[:, cut:] = 2
      seg[:, end:] = 0
      ids[:, end:] = 0
    pos = np.zeros_like(seg)
    for b in range(batch):
      for s in set(seg[b]) - {0}:
        idx = np.where(seg[b] == s)[0]
        pos[b, idx] = np.arange(len(idx))
    f[name], f[name + "_segment_ids"], f[name + "_positions"] = ids, seg, pos
  return f


def run_graph(config, build_fn, tf_features, mesh_shape="", layout=layout_lib.DEFAULT_LAYOUT,
              seed=1, weight_scale=None, feed=None, return_variables=False, values=None, runs=1):
  """build_fn(model, mtf_features, graph) -> {name: mtf tensor}; returns {name: np array}.

  weight_scale: if set, every variable is redrawn N(0, weight_scale) with a fixed numpy seed
  (identical across meshes), so that a random model is not degenerate. values: {variable name:
  array} loaded into the model (e.g. a converted checkpoint). runs: how many times the
  fetches run in the session; the last run's values are returned (a run must not see what an
  earlier one left, e.g. in a cache written in place).
  """
  with tf.Graph().as_default():
    return _run_graph(config, build_fn, tf_features, mesh_shape, layout, seed, weight_scale, feed,
                      return_variables, values, runs)


def _run_graph(config, build_fn, tf_features, mesh_shape, layout, seed, weight_scale, feed,
               return_variables, values=None, runs=1):
  tf.set_random_seed(seed)
  graph, mesh = partitioning.new_mesh()
  feats = partitioning.import_features(
      mesh, {k: tf.constant(v, tf.int32) if isinstance(v, np.ndarray) else v
             for k, v in tf_features.items()})
  model = transformer.T5Model(config, mesh,
                              einsum_gather=layout_lib.needs_einsum_gather(mesh_shape, layout))
  outputs = build_fn(model, feats, graph)
  lowering = mtf.Lowering(graph, {mesh: partitioning.placement_mesh_impl(mesh_shape, layout)},
                          autostack=False)  # Masters keep their names: same draws on any mesh.
  fetches = {k: lowering.export_to_tf_tensor(v) for k, v in outputs.items()}
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    if weight_scale:
      for var in graph.all_variables:
        rng = np.random.RandomState(zlib.crc32(var.name.encode()) + seed)
        master = var.get_master()
        sess.run(master.assign(rng.normal(0, weight_scale, master.shape.as_list())
                               .astype(np.float32)))
    for var in graph.all_variables if values else []:
      if var.name in values:
        sess.run(var.get_master().assign(values[var.name]))
    sess.run(lowering.copy_masters_to_slices())
    for _ in range(runs):
      out = sess.run(fetches, feed_dict=feed)
    if return_variables:
      out["variables"] = sess.run({v.name: v.get_master() for v in graph.all_variables})
    return out
