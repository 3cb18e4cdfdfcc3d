"""Dimension names and mesh layouts: which named dimension splits over which mesh axis.

The layout is data (a gin string), never code::

    mesh_shape = "batch:2,model:2"
    layout     = "batch:batch,d_ff:model,heads:model,vocab:model"

Dimension names used by the model: batch, length, memory_length, d_model, d_ff, heads, d_kv,
vocab, buckets. Splitting d_ff, heads and vocab over ``model`` is Megatron-style model
parallelism (§3.7 trains the 11B model this way); ``batch`` over ``batch`` is data parallelism.
"""
import mesh_tensorflow as mtf

DEFAULT_MESH_SHAPE = ""  # One device.
DEFAULT_LAYOUT = "batch:batch,d_ff:model,heads:model,vocab:model"
SPLITTABLE_DIMS = ("batch", "d_ff", "heads", "vocab", "d_model", "d_kv")


def parse_mesh_shape(spec):
  """``"batch:2,model:4"`` -> mtf.Shape; ``""`` -> one device."""
  try:
    shape = mtf.convert_to_shape(spec or "")
  except ValueError as e:
    raise ValueError(f"mesh_shape {spec!r} is not 'name:size,...': {e}") from None
  for d in shape.dims:
    if d.size < 1:
      raise ValueError(f"mesh_shape {spec!r}: axis {d.name} has size {d.size}; each axis needs "
                       "at least one device")
  return shape


def parse_layout(spec):
  try:
    return mtf.convert_to_layout_rules(spec or "")
  except ValueError as e:
    raise ValueError(f"layout {spec!r} is not 'dim:mesh_axis,...': {e}") from None


def num_devices(mesh_shape):
  return parse_mesh_shape(mesh_shape).size if mesh_shape else 1


STANDARD_AXES = ("batch", "model")


def check_layout(dim_sizes, mesh_shape, layout):
  """Raises a ValueError naming the dimension whose size does not divide its mesh axis.

  dim_sizes: {dimension name: size}, e.g. {"heads": 8, "d_ff": 2048, "batch": 8}.
  """
  shape = parse_mesh_shape(mesh_shape)
  axes = {d.name: d.size for d in shape.dims}
  pairs = sorted(parse_layout(layout)._pairs)
  if axes:
    used = {a for _, a in pairs}
    # Rules for the usual axes may stay when a mesh lacks them (one layout serves every mesh);
    # any other unknown axis is a typo, and a mesh axis no rule uses splits nothing.
    for dim_name, axis in pairs:
      if axis not in axes and axis not in STANDARD_AXES:
        raise ValueError(f"layout rule {dim_name}:{axis} names mesh axis {axis!r}, which "
                         f"mesh_shape {mesh_shape!r} does not have (axes: {sorted(axes)})")
    for axis in axes:
      if axis not in used and axes[axis] > 1:
        raise ValueError(f"mesh axis {axis!r} of mesh_shape {mesh_shape!r} is used by no "
                         f"layout rule ({layout!r}): every device would hold the whole model; "
                         f"map a dimension to it, e.g. d_ff:{axis}")
  for dim_name, axis in pairs:  # Fixed order: stable errors.
    if axis not in axes:  # A rule for an axis this mesh lacks: that dimension stays whole.
      continue
    size = dim_sizes.get(dim_name)
    if size is not None and size % axes[axis]:
      raise ValueError(f"{dim_name}={size} does not divide over mesh axis {axis}={axes[axis]} "
                       f"(mesh_shape {mesh_shape!r}); choose {dim_name} a multiple of "
                       f"{axes[axis]} or another layout")


def is_split(dim_name, mesh_shape, layout):
  axes = {d.name for d in parse_mesh_shape(mesh_shape).dims}
  return any(d == dim_name and a in axes for d, a in parse_layout(layout)._pairs)


def needs_einsum_gather(mesh_shape, layout):
  """Embedding lookups must be one-hot einsums when vocab or batch is split (see T5Model)."""
  return is_split("vocab", mesh_shape, layout) or is_split("batch", mesh_shape, layout)
