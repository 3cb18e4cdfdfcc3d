"""The model: names, parameter counts, mesh equivalence, masks, decoding."""
import math

import numpy as np
import pytest
import mesh_tensorflow as mtf
import tensorflow.compat.v1 as tf

from t5mtf.models import config as config_lib, decoding, layers, layout, partitioning, transformer
from tests import model_helpers as mh



def loss_and_grads(model, feats, graph):
  loss, _ = model.loss(feats, train=True)
  variables = graph.trainable_variables
  grads = mtf.gradients([loss], [v.outputs[0] for v in variables])
  out = {"loss": loss}
  out.update({v.name: g for v, g in zip(variables, grads)})
  return out


def variable_shapes(config, arch_feats=None):
  shapes = {}

  def build(model, feats, graph):
    out = loss_and_grads(model, feats, graph)
    shapes.update({v.name: v.shape.to_integer_list for v in graph.all_variables})
    return {"loss": out["loss"]}
  mh.run_graph(config, build, arch_feats or mh.random_features(batch=2))
  return shapes


def test_released_variable_names_and_shapes():
  shapes = variable_shapes(mh.tiny_config())
  assert shapes["shared/embedding"] == [128, 32]
  assert shapes["encoder/block_000/layer_000/SelfAttention/q"] == [32, 32]
  assert shapes["encoder/block_000/layer_000/SelfAttention/relative_attention_bias"] == [4, 32]
  assert shapes["encoder/block_001/layer_001/DenseReluDense/wi/kernel"] == [32, 64]
  assert shapes["encoder/block_001/layer_001/DenseReluDense/wo/kernel"] == [64, 32]
  assert shapes["encoder/final_layer_norm/scale"] == [32]
  assert shapes["decoder/block_001/layer_001/EncDecAttention/o"] == [32, 32]
  assert shapes["decoder/block_001/layer_002/layer_norm/scale"] == [32]
  assert shapes["decoder/block_000/layer_000/SelfAttention/relative_attention_bias"] == [4, 32]
  assert "encoder/block_001/layer_000/SelfAttention/relative_attention_bias" not in shapes
  assert len(shapes) == 1 + (2 * 8 + 2) + (2 * 13 + 2)  # embedding, encoder, decoder


@pytest.mark.parametrize("arch,extra", [
    ("encoder_decoder", {}), ("encoder_decoder_shared", {}), ("lm", {}), ("prefix_lm", {}),
    ("encoder_decoder", {"ffn_activation": "gated-gelu", "tie_embeddings": False,
                         "norm_name": "rms_norm"}),
    ("encoder_decoder", {"adapter_dim": 16})])
def test_parameter_count_from_shapes_equals_the_graph(arch, extra):
  config = mh.tiny_config(architecture=arch, **extra)
  shapes = variable_shapes(config)
  assert sum(int(np.prod(s)) for s in shapes.values()) == config.num_params()


@pytest.mark.parametrize("size,count", [
    ("small", 60_506_624), ("base", 222_903_552), ("large", 737_668_096),
    ("3B", 2_851_598_336), ("11B", 11_307_321_344)])
def test_paper_sizes_match_released_counts(size, count):
  from t5mtf.models import sizes
  assert sizes.config_for(size).num_params() == count


@pytest.mark.parametrize("mesh_shape", ["model:4", "batch:4", "batch:2,model:2"])
def test_four_device_mesh_equals_one_device(mesh_shape):
  config, feats = mh.tiny_config(), mh.random_features()
  one = mh.run_graph(config, loss_and_grads, feats)
  four = mh.run_graph(config, loss_and_grads, feats, mesh_shape=mesh_shape)
  assert one.keys() == four.keys()
  for k in one:
    np.testing.assert_allclose(four[k], one[k], atol=1e-5, rtol=1e-5, err_msg=k)


def test_packed_segments_do_not_attend_to_each_other():
  """Changing segment 2 leaves segment 1's per-token log-likelihoods unchanged."""
  config = mh.tiny_config()
  feats = mh.random_features(batch=2)
  other = {k: v.copy() for k, v in feats.items()}
  for name in ("inputs", "targets"):
    sel = other[name + "_segment_ids"] == 2
    other[name][sel] = (other[name][sel] + 7) % 120 + 2
  run = lambda f: mh.run_graph(config, lambda m, ft, g: {"ll": m.loss(ft, train=False)[1]}, f,
                               weight_scale=0.3)["ll"]
  a, b = run(feats), run(other)
  first = feats["targets_segment_ids"] == 1
  np.testing.assert_allclose(a[first], b[first], atol=1e-6)
  assert not np.allclose(a[~first], b[~first])


def reference_bucket(rel, bidirectional, num_buckets=32, max_distance=128):
  """The bucketing of §2.1 written out in plain Python, one position at a time."""
  ret = 0
  if bidirectional:
    num_buckets //= 2
    ret += num_buckets if rel > 0 else 0
    rel = abs(rel)
  else:
    rel = -min(rel, 0)
  max_exact = num_buckets // 2
  if rel < max_exact:
    return ret + rel
  large = max_exact + int(math.log(rel / max_exact) / math.log(max_distance / max_exact)
                          * (num_buckets - max_exact))
  return ret + min(large, num_buckets - 1)


def test_relative_position_buckets_equal_the_reference():
  rel = list(range(-300, 301))
  with tf.Graph().as_default(), tf.Session() as s:
    bi, causal = s.run([layers.relative_position_bucket(tf.constant(rel), True),
                        layers.relative_position_bucket(tf.constant(rel), False)])
  assert bi.tolist() == [reference_bucket(r, True) for r in rel]
  assert causal.tolist() == [reference_bucket(r, False) for r in rel]
  assert bi[rel.index(-20)] == 10 and causal[rel.index(-64)] == 26  # Worked by hand.


def _decode_fixture(beam_size=None):
  config = mh.tiny_config()
  rng = np.random.RandomState(0)
  inputs = rng.randint(2, 128, (3, 10)).astype(np.int32)
  seg = np.ones((3, 10), np.int32)
  inputs[1, 6:], seg[1, 6:] = 0, 0
  return config, {"inputs": inputs, "inputs_segment_ids": seg}


def decode(beam_size=None, decode_length=12, mesh_shape="", search="prefilter", runs=1):
  config, feats = _decode_fixture()

  def build(model, f, graph):
    if beam_size:
      out = decoding.beam_search_decode(model, f["inputs"], f["inputs_segment_ids"],
                                        decode_length, beam_size=beam_size, search=search,
                                        layout=layout.DEFAULT_LAYOUT, mesh_shape=mesh_shape)
    else:
      out = decoding.greedy_decode(model, f["inputs"], f["inputs_segment_ids"], decode_length)
    return {"out": out}
  return mh.run_graph(config, build, feats, mesh_shape=mesh_shape, weight_scale=0.5,
                      runs=runs)["out"]


def test_cached_greedy_equals_argmax_of_teacher_forced_pass():
  """Checked on a third run in one session: the caches are written in place, so a run must
  start from buffers of its own, not what an earlier run left."""
  out = decode(runs=3)
  assert len({tuple(r) for r in out}) > 1 and len(set(out.ravel())) > 3, "non-degenerate"
  config, feats = _decode_fixture()
  feats = dict(feats, targets=out, targets_segment_ids=np.ones_like(out))
  logits = mh.run_graph(config, lambda m, f, g: {"l": m.logits(f)}, feats, weight_scale=0.5)["l"]
  argmax = logits.argmax(-1)
  for row, am in zip(out, argmax):
    n = list(row).index(1) + 1 if 1 in row else len(row)
    assert row[:n].tolist() == am[:n].tolist()
    assert (row[n:] == 0).all()


@pytest.mark.parametrize("beam_size", [None, 4])
def test_decoding_with_heads_split_equals_one_device(beam_size):
  """The key/value caches split over the model axis (heads) decode what one device decodes
  (beam search ranking every candidate: the released prefilter keeps the best 2 per vocabulary
  shard, so its beams depend on the mesh by design)."""
  np.testing.assert_array_equal(decode(beam_size, mesh_shape="model:2", search="exhaustive"),
                                decode(beam_size, search="exhaustive"))


@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("mesh_shape", ["", "model:2", "batch:2"])
def test_write_slot_writes_one_slot_per_row(mesh_shape, in_place):
  """decoding.write_slot against numpy: per-row positions, heads or batch split over 2 devices;
  every other slot keeps its value; by a scatter or in place (into a buffer of the test's own,
  made each run by a numpy function)."""
  rng = np.random.RandomState(0)
  cache = rng.normal(size=(4, 2, 6, 3)).astype(np.float32)  # [batch, heads, memory, d_kv]
  new = rng.normal(size=(2, 4, 3)).astype(np.float32)  # [heads, batch, d_kv]: transposed
  where = np.array([0, 5, 2, 2], np.int32)
  b, h, m, d = (mtf.Dimension(n, s) for n, s in zip(("batch", "heads", "memory", "d_kv"),
                                                      cache.shape))

  def build(model, f, graph):
    mesh = model.mesh
    own = tf.numpy_function(cache.copy, [], tf.float32)
    own.set_shape(cache.shape)
    c = mtf.import_tf_tensor(mesh, own if in_place else tf.constant(cache), [b, h, m, d])
    n = mtf.import_tf_tensor(mesh, tf.constant(new), [h, b, d])
    p = mtf.import_tf_tensor(mesh, tf.constant(where), [b])
    return {"out": decoding.write_slot(c, n, p, m, in_place=in_place)}
  out = mh.run_graph(mh.tiny_config(), build, {}, mesh_shape=mesh_shape,
                     layout="heads:model;batch:batch")["out"]
  expected = cache.copy()
  for row, slot in enumerate(where):
    expected[row, :, slot] = new[:, row]
  np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("mesh_shape", ["", "model:2", "batch:2", "batch:2,model:2"])
def test_dense_matmul_lowering_equals_einsum(mesh_shape):
  """layers.dense in a decoding step (tf.matmul per slice) against numpy's einsum: a
  projection, one whose weight is [out, in] (the tied logits), a summed dimension split over
  the mesh (heads), and a batched product (q . k over shared batch and heads) in another
  output order; with several rows against a weight stored [out, in] the product is taken as
  w @ x^T, plain, batched, and with x stored [in, rows] too."""
  rng = np.random.RandomState(0)
  names = ("batch", "heads", "d_kv", "d_model", "vocab", "memory")
  sizes = (4, 2, 3, 6, 8, 5)
  b, h, k, d, v, m = (mtf.Dimension(n, s) for n, s in zip(names, sizes))
  arrays = {n: rng.normal(size=[x.size for x in dims]).astype(np.float32)
            for n, dims in (("x", [b, h, k]), ("w", [h, k, d]), ("e", [v, d]),
                            ("y", [b, d]), ("kv", [b, h, m, k]), ("q", [b, h, d, k]),
                            ("yt", [d, b]))}
  dims = {"x": [b, h, k], "w": [h, k, d], "e": [v, d], "y": [b, d], "kv": [b, h, m, k],
          "q": [b, h, d, k], "yt": [d, b]}

  def build(model, f, graph):
    ctx = model.context(train=False)
    ctx.few_rows = True
    t = {n: mtf.import_tf_tensor(model.mesh, tf.constant(a), dims[n]) for n, a in arrays.items()}
    return {"proj": layers.dense(ctx, t["x"], t["w"], [h, k]),
            "tied": layers.dense(ctx, t["y"], t["e"], [d]),
            "qk": layers.dense(ctx, t["x"], t["kv"], [k], [h, b, m]),
            "qk_rows": layers.dense(ctx, t["q"], t["kv"], [k]),
            "tied_yt": layers.dense(ctx, t["yt"], t["e"], [d])}
  out = mh.run_graph(mh.tiny_config(), build, {}, mesh_shape=mesh_shape,
                     layout="heads:model;batch:batch;vocab:model")
  a = arrays
  for name, expected in (("proj", np.einsum("bhk,hkd->bd", a["x"], a["w"])),
                         ("tied", np.einsum("bd,vd->bv", a["y"], a["e"])),
                         ("qk", np.einsum("bhk,bhmk->hbm", a["x"], a["kv"])),
                         ("qk_rows", np.einsum("bhdk,bhmk->bhdm", a["q"], a["kv"])),
                         ("tied_yt", np.einsum("db,vd->bv", a["yt"], a["e"]))):
    np.testing.assert_allclose(out[name], expected, rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("beams", [1, 4])
@pytest.mark.parametrize("mesh_shape", ["", "model:2", "batch:2,model:2"])
def test_headwise_logits_equal_the_batched_matmul(mesh_shape, beams):
  """layers.headwise_logits (a decode's encoder keys stored [batch, memory, heads, d_kv], q
  placed block-diagonally) against numpy's einsum in float64 and layers.dense's batched matmul
  over keys stored [batch, heads, memory, d_kv], at T5-small's heads and d_kv: one query row
  (greedy) or a beam's 4 over one encoder's keys; heads split over the mesh too. Equal up to
  float32 rounding: which oneDNN kernel runs, so in which order it adds the d_kv products,
  depends on the shapes (the same bits at greedy's 512 keys, not at 16)."""
  rng = np.random.RandomState(0)
  b, r, one, h, k, m = (mtf.Dimension(n, s) for n, s in (
      ("batch", 2), ("beam", beams), ("length", 1), ("heads", 8), ("d_kv", 64), ("memory", 16)))
  q = rng.normal(size=(2, beams, 1, 8, 64)).astype(np.float32)
  keys = rng.normal(size=(2, 16, 8, 64)).astype(np.float32)
  out_shape = [b, h, r, one, m]

  def build(model, f, graph):
    ctx = model.context(train=False)
    ctx.few_rows = True
    qt = mtf.import_tf_tensor(model.mesh, tf.constant(q), [b, r, one, h, k])
    kt = mtf.import_tf_tensor(model.mesh, tf.constant(keys), [b, m, h, k])
    heads_first = mtf.transpose(kt, [b, h, m, k])
    return {"headwise": layers.headwise_logits(qt, kt, mtf.Shape(out_shape)),
            "dense": layers.dense(ctx, qt, heads_first, [k], out_shape)}
  out = mh.run_graph(mh.tiny_config(), build, {}, mesh_shape=mesh_shape,
                     layout="heads:model;batch:batch")
  expected = np.einsum("brlhk,bmhk->bhrlm", q.astype(np.float64), keys.astype(np.float64))
  assert out["headwise"].shape == expected.shape
  np.testing.assert_allclose(out["headwise"], expected, rtol=0, atol=2e-5)
  np.testing.assert_allclose(out["headwise"], out["dense"], rtol=0, atol=2e-5)
  assert np.abs(out["headwise"]).max() > 16  # Sums of 64 N(0, 1) pairs: not all near 0.


@pytest.mark.parametrize("mesh_shape", ["", "batch:2", "model:2", "batch:2,model:2"])
def test_beam_reorder_gathers_what_the_selector_einsum_selects(mesh_shape):
  """decoding._reorder (how beam search reorders the caches) against numpy's einsum with the
  one-hot selector: batch split over the mesh, and the old beams split (model:2), where only
  the slice holding a chosen beam may contribute it."""
  rng = np.random.RandomState(0)
  batch, old, beam, heads, mem = (mtf.Dimension(n, s) for n, s in
                                  (("batch", 4), ("old_beam", 4), ("beam", 4), ("heads", 2),
                                   ("memory", 3)))
  state = rng.normal(size=[4, 2, 4, 3]).astype(np.float32)  # [batch, heads, old_beam, memory]
  chosen = rng.randint(0, 4, [4, 4])  # [batch, beam]: repeats and unchosen beams.
  selector = np.eye(4, dtype=np.float32)[chosen].transpose(0, 2, 1)  # [batch, old_beam, beam]

  def build(model, f, graph):
    s = mtf.import_tf_tensor(model.mesh, tf.constant(state), [batch, heads, old, mem])
    sel = mtf.import_tf_tensor(model.mesh, tf.constant(selector), [batch, old, beam])
    return {"out": decoding._reorder(s, sel, old, mtf.Shape([batch, beam, heads, mem]))}
  out = mh.run_graph(mh.tiny_config(), build, {}, mesh_shape=mesh_shape,
                     layout="batch:batch;old_beam:model")["out"]
  np.testing.assert_array_equal(out, np.einsum("bhom,bon->bnhm", state, selector))


def test_beam_width_one_equals_greedy():
  np.testing.assert_array_equal(decode(beam_size=1), decode())


def test_beam_cache_reordering_per_row_equals_the_released_batch_wide_one(monkeypatch):
  """Beam search given every batch row as its own mesh slice (decoding._rows_as_slices: a
  [beam, beam] one-hot reorder of the caches per row) decodes what it decodes given the
  layout and mesh shape as the released code passes them (one [batch*beam]^2 reorder)."""
  ours = decode(beam_size=4)
  monkeypatch.setattr(decoding, "_rows_as_slices",
                      lambda layout, mesh_shape, batch: dict(layout=layout or "",
                                                             mesh_shape=mesh_shape or ""))
  np.testing.assert_array_equal(ours, decode(beam_size=4))


def test_beam_search_scores_at_least_greedy():
  """With alpha=0.6 the best beam's length-normalised log-prob is >= greedy's."""
  greedy, beam = decode(), decode(beam_size=4)
  config, feats = _decode_fixture()

  def score(out):
    f = dict(feats, targets=out, targets_segment_ids=(out > 0).astype(np.int32))
    ll = mh.run_graph(config, lambda m, ft, g: {"ll": m.loss(ft, train=False)[1]}, f,
                      weight_scale=0.5)["ll"].sum(-1)
    lengths = (out > 0).sum(-1)
    return ll / ((5.0 + lengths) / 6.0) ** 0.6
  assert (score(beam) >= score(greedy) - 1e-4).all()


def test_bad_config_names_the_parameter():
  with pytest.raises(ValueError, match="architecture='encoder_decoderr'"):
    config_lib.ModelConfig(architecture="encoder_decoderr")
  with pytest.raises(ValueError, match="vocab_size=32100 must be a multiple of 128"):
    config_lib.ModelConfig(vocab_size=32100)


def test_layout_that_does_not_divide_names_the_dimension():
  with pytest.raises(ValueError, match="heads=6 does not divide over mesh axis model=4"):
    layout.check_layout({"heads": 6}, "model:4", layout.DEFAULT_LAYOUT)


def test_bfloat16_activations_close_to_float32():
  feats = mh.random_features()
  build = lambda m, f, g: {"loss": m.loss(f, train=False)[0]}
  fp32 = mh.run_graph(mh.tiny_config(), build, feats, weight_scale=0.2)["loss"]
  bf16 = mh.run_graph(mh.tiny_config(activation_dtype="bfloat16"), build, feats,
                      weight_scale=0.2)["loss"]
  assert abs(bf16 - fp32) / fp32 < 0.02


@pytest.mark.parametrize("size,count", [
    ("small", 76_961_152), ("base", 247_577_856), ("large", 783_150_080),
    ("xl", 2_849_757_184), ("xxl", 11_135_332_352)])
def test_t5_1_1_gin_sizes_match_released_counts(size, count):
  from t5mtf import config_gin
  settings = config_gin.settings_from_gin([f"models/t5.1.1/{size}.gin"], [], "/tmp/unused")
  assert settings.model.num_params() == count


@pytest.mark.parametrize("arch", ["lm", "prefix_lm"])
def test_decoder_only_greedy_equals_argmax_of_full_pass(arch):
  config = mh.tiny_config(architecture=arch)
  rng = np.random.RandomState(0)
  inputs = rng.randint(2, 128, (3, 6)).astype(np.int32)
  inputs[0, 4:] = inputs[2, 1:] = 0
  inputs[0, 3] = inputs[1, 5] = inputs[2, 0] = 1  # EOS ends each prefix (row 2: EOS alone).

  def build(model, f, graph):
    return {"out": decoding.greedy_decode_decoder_only(model, f["inputs"], 8)}
  out = mh.run_graph(config, build, {"inputs": inputs}, weight_scale=0.5, runs=3)["out"]
  assert len(set(out.ravel())) > 2
  for b in range(3):  # Re-run the whole sequence once and check every generated token.
    n = int((inputs[b] > 0).sum())
    seq = np.concatenate([inputs[b, :n], out[b]])[None].astype(np.int32)
    prefix = (np.arange(seq.shape[1]) < n).astype(np.int32)[None]
    feats = {"targets": seq, "targets_segment_ids": np.ones_like(seq), "prefix_mask": prefix}
    logits = mh.run_graph(config, lambda m, f, g: {"l": m.logits(f)}, feats,
                          weight_scale=0.5)["l"]
    k = list(out[b]).index(1) + 1 if 1 in out[b] else len(out[b])
    assert logits[0, n:n + k].argmax(-1).tolist() == out[b, :k].tolist()


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_dropout_masks_drop_at_the_rate_and_repeat_for_the_same_seed(rate):
  """The stateless 16-bit draws of layers._keep_fn on an odd-sized tensor: the dropped fraction
  is within 5 standard deviations of the rate; the same (step, call site, microbatch, slice
  offset) gives the same mask (the backward pass relies on it); another microbatch, call site
  or offset gives another."""
  with tf.Graph().as_default():
    tf.train.get_or_create_global_step()
    _, mesh = partitioning.new_mesh()
    ctx = layers.Context(mesh, mh.tiny_config(dropout_rate=rate), train=True,
                         variable_dtype=mtf.VariableDType())
    rows = mtf.Dimension("rows", 1001)
    keep, inputs = layers._keep_fn(ctx, [rows])
    other_site, _ = layers._keep_fn(ctx, [rows])
    ctx.dropout_salt = mtf.constant(mesh, 0, dtype=tf.int32)
    salted, salted_inputs = layers._keep_fn(ctx, [rows])
    assert len(inputs) == 1 and len(salted_inputs) == 2
    t, whole, part = tf.zeros([1001, 999]), tf.range(1001), tf.range(500, 1001)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      a, again, offset, other, m0, m1 = sess.run([
          keep(t, whole), keep(t, whole), keep(t, part), other_site(t, whole),
          salted(t, 0, whole), salted(t, 1, whole)])
  n = a.size
  assert a.shape == (1001, 999)
  assert abs(np.mean(~a) - rate) < 5 * np.sqrt(rate * (1 - rate) / n)
  np.testing.assert_array_equal(a, again)
  for x, y in ((a, offset), (a, other), (m0, m1)):
    assert np.mean(x != y) > rate * (1 - rate)  # Independent masks differ in ~2r(1-r).


@pytest.mark.parametrize("mesh_shape", ["", "batch:2", "model:2", "batch:2,model:2"])
def test_dropout_masks_differ_between_slices_and_agree_between_replicas(mesh_shape):
  """layers.dropout on [batch, length, d_ff] and [batch, length, d_model] with batch and d_ff
  split: slices holding different parts of a tensor draw different masks (they used to repeat
  slice 0's), replicas of one part (d_model is not split over `model`) draw the same mask, and
  one device draws exactly the plain (step, call site) stream, as before slice offsets."""
  rate = 0.5
  with tf.Graph().as_default():
    tf.train.get_or_create_global_step()
    graph, mesh = partitioning.new_mesh()
    ctx = layers.Context(mesh, mh.tiny_config(dropout_rate=rate), train=True,
                         variable_dtype=mtf.VariableDType())
    batch, length = mtf.Dimension("batch", 4), mtf.Dimension("length", 6)
    shapes = [[batch, length, ctx.d_ff], [batch, length, ctx.d_model]]
    masks = [layers.dropout(ctx, mtf.ones(mesh, mtf.Shape(s))) for s in shapes]
    impl = partitioning.placement_mesh_impl(mesh_shape, "batch:batch;d_ff:model")
    lowering = mtf.Lowering(graph, {mesh: impl}, autostack=False)
    whole = [lowering.export_to_tf_tensor(m) for m in masks]
    slices = [lowering.tensors[m].tensor_list for m in masks]
    plain = tf.random.stateless_uniform([4 * 6 * 64 // 2], tf.constant([0, 1]), minval=None,
                                        maxval=None, dtype=tf.uint32)
    plain = tf.reshape(tf.bitcast(plain, tf.uint16), [4, 6, 64])
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      (ff, dm), (ff_slices, dm_slices), plain = sess.run([whole, slices, plain])
  keep = ff > 0
  assert abs(np.mean(~keep) - rate) < 0.1
  if not mesh_shape:
    np.testing.assert_array_equal(keep, plain >= 32768)
  if "batch" in mesh_shape:
    assert np.mean(keep[:2] != keep[2:]) > 0.3
    assert np.mean((dm > 0)[:2] != (dm > 0)[2:]) > 0.3
  if "model" in mesh_shape:
    assert np.mean(keep[..., :32] != keep[..., 32:]) > 0.3
    # d_model is whole on both `model` processors: the two copies of each part are equal.
    model = layout.parse_mesh_shape(mesh_shape).to_integer_list[-1]
    for i in range(0, len(dm_slices), model):
      for j in range(i + 1, i + model):
        np.testing.assert_array_equal(dm_slices[i], dm_slices[j])


def _value_and_gradient(rate, dims, weights, upstream, layout, mesh_shape, fn, extra=()):
  """fn(ctx, v, *others) on a variable v of ``dims`` holding ``weights`` (and variables from
  ``extra``: [(name, dims, weights)]), in training mode with dropout ``rate`` -> (fn's value,
  the gradients of sum(value * upstream) wrt v and the others)."""
  with tf.Graph().as_default():
    tf.train.get_or_create_global_step()
    graph, mesh = partitioning.new_mesh()
    ctx = layers.Context(mesh, mh.tiny_config(dropout_rate=rate), train=True,
                         variable_dtype=mtf.VariableDType())
    variables = [mtf.get_variable(mesh, name, d, initializer=tf.constant_initializer(w))
                 for name, d, w in [("v", dims, weights)] + list(extra)]
    out = fn(ctx, *variables)
    loss = mtf.reduce_sum(out * mtf.import_tf_tensor(mesh, tf.constant(upstream), out.shape))
    grads = mtf.gradients([loss], variables)
    impl = partitioning.placement_mesh_impl(mesh_shape, layout)
    lowering = mtf.Lowering(graph, {mesh: impl}, autostack=False)
    fetch = [lowering.export_to_tf_tensor(t) for t in [out] + grads]
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(lowering.copy_masters_to_slices())
      return sess.run(fetch)


@pytest.mark.parametrize("mesh_shape,rate", [("", 0.1), ("", 0.0), ("model:2", 0.1),
                                             ("batch:2", 0.1)])
def test_fused_attention_output_equals_mtf_softmax_dropout_einsum(mesh_shape, rate):
  """layers.attention_output (one op; the dropped weights made again in the backward pass)
  against the same computation from mtf ops: forward bit-equal, gradients (towards the logits
  and towards v) within float rounding."""
  dims = [mtf.Dimension(n, s) for n, s in (("batch", 2), ("heads", 4), ("length", 5),
                                           ("memory_length", 7))]
  v_dims = [dims[0], dims[1], dims[3], mtf.Dimension("d_kv", 3)]
  rng = np.random.RandomState(0)
  weights = rng.normal(0, 3, [d.size for d in dims]).astype(np.float32)
  v_weights = rng.normal(0, 1, [d.size for d in v_dims]).astype(np.float32)
  upstream = rng.normal(0, 1, [2, 4, 5, 3]).astype(np.float32)

  def run(fused):
    def fn(ctx, x, v):
      logits = x * 1.5
      if fused:
        return layers.attention_output(ctx, logits, v, dims[-1])
      p = layers.dropout(ctx, mtf.softmax(logits, dims[-1]))
      return mtf.einsum([p, v], reduced_dims=[dims[-1]])
    return _value_and_gradient(rate, dims, weights, upstream, "heads:model;batch:batch",
                               mesh_shape, fn, [("v_", v_dims, v_weights)])
  (out, grad, grad_v), (ref_out, ref_grad, ref_grad_v) = run(True), run(False)
  assert out.shape == (2, 4, 5, 3)
  np.testing.assert_array_equal(out, ref_out)
  # Float rounding: the two sum the same products in other orders (terms up to ~5 here).
  np.testing.assert_allclose(grad, ref_grad, atol=1e-5, rtol=1e-5)
  np.testing.assert_allclose(grad_v, ref_grad_v, atol=1e-5, rtol=1e-5)
  z = 1.5 * weights
  y = np.exp(z - z.max(-1, keepdims=True))
  undropped = np.einsum("bhlm,bhmd->bhld", y / y.sum(-1, keepdims=True), v_weights)
  if rate:  # Dropout acts on the weights...
    assert np.abs(out - undropped).max() > 1e-3
  else:  # ...and without it this is softmax(logits) v (numpy).
    np.testing.assert_allclose(out, undropped, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mesh_shape", ["", "model:2"])
def test_xla_compiled_elementwise_equals_plain_ops(mesh_shape, monkeypatch):
  """layers.elementwise's functions (dropout's multiplies, the attention's and ReLU's
  backward) compiled by XLA against the same functions as plain TensorFlow ops, with dropout
  on: the loss bit-equal (the forward compiles only IEEE-exact ops), gradients within float
  rounding (the backward's sum runs in XLA's order). And the compiled graph does call XLA."""
  config, feats = mh.tiny_config(dropout_rate=0.1), mh.random_features()
  graphs = []

  def build(model, mtf_feats, graph):
    graphs.append(tf.get_default_graph())
    return loss_and_grads(model, mtf_feats, graph)
  compiled = mh.run_graph(config, build, feats, mesh_shape=mesh_shape, weight_scale=0.5)
  monkeypatch.setattr(layers, "XLA_ELEMENTWISE", False)
  plain = mh.run_graph(config, build, feats, mesh_shape=mesh_shape, weight_scale=0.5)

  def xla_calls(graph):
    return [op for op in graph.get_operations() if op.type.endswith("PartitionedCall")
            and "_XlaMustCompile" in op.node_def.attr and op.get_attr("_XlaMustCompile")]
  assert len(xla_calls(graphs[0])) >= 4 * config.num_encoder_layers
  assert not xla_calls(graphs[1])
  assert compiled.keys() == plain.keys()
  np.testing.assert_array_equal(compiled["loss"], plain["loss"])
  for k in compiled:
    assert np.abs(plain[k]).max() > 0, k
    np.testing.assert_allclose(compiled[k], plain[k], atol=1e-6, rtol=1e-5, err_msg=k)


@pytest.mark.parametrize("mesh_shape,rate", [("", 0.1), ("", 0.0), ("model:2", 0.5)])
def test_fused_relu_dropout_equals_relu_then_dropout(mesh_shape, rate):
  """layers.relu_dropout (gradient from its output alone) against mtf.relu then dropout."""
  dims = [mtf.Dimension("batch", 3), mtf.Dimension("length", 5), mtf.Dimension("d_ff", 8)]
  rng = np.random.RandomState(1)
  weights = rng.normal(0, 1, [d.size for d in dims]).astype(np.float32)
  upstream = rng.normal(0, 1, [d.size for d in dims]).astype(np.float32)

  def run(fused):
    def fn(ctx, v):
      return layers.relu_dropout(ctx, v) if fused else layers.dropout(ctx, mtf.relu(v))
    return _value_and_gradient(rate, dims, weights, upstream, "d_ff:model", mesh_shape, fn)
  (out, grad), (ref_out, ref_grad) = run(True), run(False)
  np.testing.assert_array_equal(out, ref_out)
  np.testing.assert_array_equal(grad, ref_grad)
  assert np.any(out > 0) and np.any(grad == 0)



@pytest.mark.parametrize("mesh_shape", ["", "model:2"])
def test_cross_entropy_equals_the_released_mtf_one(mesh_shape):
  """transformer.cross_entropy (target picked by a select on a bool one-hot) against
  mtf.layers.softmax_cross_entropy_with_logits, which the released code calls: loss and log Z
  bit-equal, gradient too; with the vocabulary split over two devices as well."""
  dims = [mtf.Dimension("batch", 2), mtf.Dimension("length", 3), mtf.Dimension("vocab", 10)]
  rng = np.random.RandomState(2)
  logits = rng.normal(0, 4, [2, 3, 10]).astype(np.float32)
  targets = rng.randint(0, 10, [2, 3]).astype(np.int32)
  upstream = rng.normal(0, 1, [2, 3]).astype(np.float32)

  def run(ours):
    def fn(ctx, v):
      t = mtf.import_tf_tensor(ctx.mesh, tf.constant(targets), dims[:2])
      if ours:
        xent, log_z = transformer.cross_entropy(v, t, dims[2])
        return xent + 1e-4 * mtf.square(log_z)
      return mtf.layers.softmax_cross_entropy_with_logits(v, t, dims[2], z_loss=1e-4)
    return _value_and_gradient(0.0, dims, logits, upstream, "vocab:model", mesh_shape, fn)
  (out, grad), (ref_out, ref_grad) = run(True), run(False)
  np.testing.assert_array_equal(out, ref_out)
  np.testing.assert_array_equal(grad, ref_grad)
  z = logits.max(-1) + np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1))
  picked = np.take_along_axis(logits, targets[..., None], -1)[..., 0]
  np.testing.assert_allclose(out, z - picked + 1e-4 * z ** 2, rtol=1e-6)


def _tf_ancestors(tensors_or_ops):
  """Every op the given ones wait for (data and control inputs), themselves included."""
  seen, stack = set(), [getattr(t, "op", t) for t in tensors_or_ops]
  while stack:
    op = stack.pop()
    if op not in seen:
      seen.add(op)
      stack.extend([t.op for t in op.inputs] + list(op.control_inputs))
  return seen


def _tf_descendants(op):
  """Every op that waits for ``op`` (data and control edges), itself included."""
  seen, stack = set(), [op]
  while stack:
    o = stack.pop()
    if o not in seen:
      seen.add(o)
      stack.extend([c for t in o.outputs for c in t.consumers()] + list(o._control_outputs))
  return seen


@pytest.mark.parametrize("mesh_shape,xla", [("", True), ("batch:2,model:2", True), ("", False)])
def test_backward_pass_makes_nothing_large_before_its_gradient_arrives(mesh_shape, xla,
                                                                       monkeypatch):
  """TensorFlow runs an op as soon as its inputs exist: a backward-pass op that reads only
  forward values (dropout's scale times the softmax, ReLU's mask as floats) ran during the
  forward pass and held its output until the gradient arrived, every layer's at once at the
  step's peak (T5-small: ~600 MiB; bench/memory.py). Every op of the backward pass (needed for
  the gradients, not for the loss) with an output as large as an activation must wait for the
  upstream gradient; with the elementwise functions compiled by XLA and as plain ops."""
  monkeypatch.setattr(layers, "XLA_ELEMENTWISE", xla)
  config = mh.tiny_config(dropout_rate=0.1)
  batch, targets = 4, 8
  feats = mh.random_features(batch=batch, inputs_length=16, targets_length=targets)
  with tf.Graph().as_default():
    tf.train.get_or_create_global_step()
    graph, mesh = partitioning.new_mesh()
    model = transformer.T5Model(config, mesh, einsum_gather=layout.needs_einsum_gather(
        mesh_shape, layout.DEFAULT_LAYOUT))
    features = partitioning.import_features(
        mesh, {k: tf.constant(v, tf.int32) for k, v in feats.items()
               if not k.endswith("_positions")})
    loss, _ = model.loss(features, train=True)
    seed = tf.placeholder_with_default(1.0, [], name="upstream_gradient")
    variables = [v.outputs[0] for v in graph.trainable_variables]
    grads = mtf.gradients([loss], variables, grad_ys=[mtf.import_tf_tensor(mesh, seed, [])])
    lowering = mtf.Lowering(graph, {mesh: partitioning.placement_mesh_impl(mesh_shape)},
                            autostack=False)
    tf_loss = lowering.export_to_tf_tensor(loss)
    tf_grads = [lowering.export_to_tf_tensor(g) for g in grads if g is not None]
    backward_only = _tf_ancestors(tf_grads) - _tf_ancestors([tf_loss])
    waits = _tf_descendants(seed.op)
    smallest_activation = batch * targets * config.d_model // 4  # A slice on batch:2,model:2.
    # A variable read shares the variable's buffer; tf.zeros is (or is folded into) a constant.
    early = sorted(op.name for op in backward_only - waits
                   if op.type not in ("ReadVariableOp", "Fill", "Const")
                   and any(t.shape.is_fully_defined() and t.dtype.is_floating
                           and t.shape.num_elements() >= smallest_activation
                           for t in op.outputs))
  assert len(backward_only & waits) > 100  # The check sees the backward pass.
  assert not early, early[:6]


@pytest.mark.parametrize("setting,expected", [(None, True), ("0", False)])
def test_importing_t5mtf_first_turns_on_onednn_kernels_unless_the_user_chose(setting, expected):
  """TensorFlow turns its oneDNN kernels on by itself only on some Intel CPUs; t5mtf turns them
  on everywhere (t5mtf/__init__.py) unless TF_ENABLE_ONEDNN_OPTS says otherwise."""
  import os
  import subprocess
  import sys
  env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
  if setting is not None:
    env["TF_ENABLE_ONEDNN_OPTS"] = setting
  code = ("import t5mtf, tensorflow\n"
          "from tensorflow.python.util import _pywrap_util_port\n"
          "print(_pywrap_util_port.IsMklEnabled())")
  out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       check=True, timeout=300)
  assert out.stdout.strip().splitlines()[-1] == str(expected)
