"""From a layout (data) to a lowered TF graph: mesh implementation, feature import, lowering.

Without a TPU, ``PlacementMeshImpl`` places each of the N logical processors' slices on a device
(on one CPU, N copies on that CPU: numerically what N machines would compute). With a TPU,
``SimdMeshImpl`` (see ``t5mtf.train.model_fn``).
"""
import mesh_tensorflow as mtf
import tensorflow.compat.v1 as tf

from t5mtf.models import layout as layout_lib

MESH_NAME = "mesh"


def placement_mesh_impl(mesh_shape="", layout=layout_lib.DEFAULT_LAYOUT, devices=None):
  shape = layout_lib.parse_mesh_shape(mesh_shape)
  devices = devices or [""] * shape.size
  if len(devices) != shape.size:
    raise ValueError(f"mesh_shape {mesh_shape!r} has {shape.size} processors but "
                     f"{len(devices)} devices were given")
  return mtf.placement_mesh_impl.PlacementMeshImpl(shape, layout_lib.parse_layout(layout),
                                                    devices)


def import_features(mesh, features, batch_dim_name="batch"):
  """tf int32 features [batch, length] -> mtf tensors [batch, length]; every feature
  prefixed ``inputs`` gets its own length dim size from its shape."""
  out = {}
  for name, t in features.items():
    if t.dtype not in (tf.int32, tf.int64) or t.shape.ndims != 2:
      continue
    batch, length = t.shape.as_list()
    if batch is None or length is None:
      raise ValueError(f"feature {name!r} needs a static shape, got {t.shape}")
    dims = [mtf.Dimension(batch_dim_name, batch), mtf.Dimension("length", length)]
    out[name] = mtf.import_tf_tensor(mesh, tf.cast(t, tf.int32), mtf.Shape(dims))
  return out


def new_mesh():
  graph = mtf.Graph()
  return graph, mtf.Mesh(graph, MESH_NAME)


def ordered_update(grads):
  """Makes every variable update wait for every gradient.

  mesh-tensorflow 0.1.21 lets an update run while other gradients still read the old value
  (two identical runs then diverge after step 1). identity + depend orders them at no cost;
  the identity is needed first or depend fails on batch-split layouts.
  """
  grads = [mtf.identity(g) if g is not None else None for g in grads]
  deps = [g for g in grads if g is not None]
  return [mtf.depend(g, deps) if g is not None else None for g in grads]
