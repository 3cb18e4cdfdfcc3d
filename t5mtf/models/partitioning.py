"""From a layout (data) to a lowered TF graph: mesh implementation, feature import, lowering.

Without a TPU, ``PlacementMeshImpl`` places each of the N logical processors' slices on a device
(on one CPU, N copies on that CPU: numerically what N machines would compute). With a TPU,
``SimdMeshImpl``: one program for all cores, the logical mesh mapped onto the TPU's physical
mesh by mtf's own ``auto_logical_to_physical_tpu``.
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


def simd_mesh_impl(mesh_shape, layout, device_assignment):
  """The TPU mesh implementation for a TPUEstimator's ``params["context"].device_assignment``."""
  shape = layout_lib.parse_mesh_shape(mesh_shape)
  physical = [int(i) for i in device_assignment.topology.mesh_shape]
  from absl import flags
  if not flags.FLAGS.is_parsed():  # mtf's TPU mapping reads its absl flags (defaults outside
    flags.FLAGS.mark_as_parsed()   # absl.app, e.g. in a notebook or under pytest).
  if len(physical) == 4:  # TPU topologies report [x, y, z, cores per chip].
    physical = mtf.simd_mesh_impl.physical_shape_3d_from_topology_proto_4d(physical)
  if shape.size != device_assignment.num_replicas:
    raise ValueError(f"mesh_shape {mesh_shape!r} has {shape.size} processors but the TPU has "
                     f"{device_assignment.num_replicas} cores")
  logical_to_physical = mtf.simd_mesh_impl.auto_logical_to_physical_tpu(
      shape.to_integer_list, physical, device_assignment=device_assignment)
  return mtf.simd_mesh_impl.SimdMeshImpl(shape, layout_lib.parse_layout(layout), None,
                                         device_assignment,
                                         logical_to_physical=logical_to_physical)


def tpu_variable_placer(tpu_context):
  """Master variables spread over the TPU hosts by memory, as mtf places them."""
  hosts = [tpu_context.tpu_host_placement_function(host_id=i)
           for i in range(tpu_context.num_hosts)]
  return mtf.utils.BalancedVariablePlacer(hosts, [0] * len(hosts))


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


def new_mesh(variable_placer=None):
  graph = mtf.Graph()
  return graph, mtf.Mesh(graph, MESH_NAME, variable_placer)


def ordered_update(grads):
  """Makes every variable update wait for every gradient.

  mesh-tensorflow 0.1.21 lets an update run while other gradients still read the old value
  (two identical runs then diverge after step 1). identity + depend orders them at no cost;
  the identity is needed first or depend fails on batch-split layouts.
  """
  grads = [mtf.identity(g) if g is not None else None for g in grads]
  deps = [g for g in grads if g is not None]
  return [mtf.depend(g, deps) if g is not None else None for g in grads]
