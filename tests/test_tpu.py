"""The --tpu path, as far as it can be checked without a TPU: the model_fn under a TPUEstimator
context lowers every mode on SimdMeshImpl for a simulated 2-core TPU (graph only: nothing here
runs on a TPU), and the TPUEstimator is built from the flags."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from tensorflow.python.tpu import device_assignment as device_assignment_lib
from tensorflow.python.tpu import topology as topology_lib
from tensorflow_estimator.python.estimator.model_fn import ModeKeys
from tensorflow_estimator.python.estimator.tpu import tpu_config, tpu_estimator

from t5mtf.models import sizes, variables
from t5mtf.train import loop, model_fn as model_fn_lib, settings as settings_lib

HOST = "/job:worker/task:0/device:CPU:0"


class FakeTpuContext:
  """What TPUEstimator hands the model_fn as params["context"], for one host with 2 cores."""
  num_hosts = 1

  def __init__(self, cores=2):
    coords = np.array([[[0, 0, 0, c] for c in range(cores)]], np.int32)
    topology = topology_lib.Topology(mesh_shape=[1, 1, 1, cores], device_coordinates=coords)
    self.device_assignment = device_assignment_lib.DeviceAssignment(
        topology, core_assignment=coords.reshape(cores, 1, 4))

  def tpu_host_placement_function(self, host_id):
    return HOST


def _settings(tmp_path, **kw):
  config = sizes.config_for("tiny", vocab_size=128, d_model=32, d_ff=64)
  return settings_lib.RunSettings(model_dir=str(tmp_path), model=config, mesh_shape="model:2",
                                  batch_size=4, inputs_length=8, targets_length=4, **kw)


def _build(settings, mode):
  graph = tf.Graph()
  with graph.as_default():
    features = {k + suffix: tf.ones([4, n], tf.int32)
                for k, n in (("inputs", 8), ("targets", 4))
                for suffix in ("", "_segment_ids", "_positions")}
    tf.train.get_or_create_global_step()
    spec = model_fn_lib.model_fn_builder(settings)(features, None, mode,
                                                   {"context": FakeTpuContext()})
  return graph, spec


@pytest.mark.parametrize("microbatches", [1, 2])
def test_train_graph_lowers_on_simd_mesh(tmp_path, microbatches):
  settings = _settings(tmp_path, num_microbatches=microbatches)
  graph, spec = _build(settings, ModeKeys.TRAIN)
  assert isinstance(spec, tpu_estimator.TPUEstimatorSpec) and spec.host_call is not None
  with graph.as_default():
    masters = {v.op.name: v.device for v in tf.global_variables()}
    slices = {v.op.name: v.device for v in tf.get_collection("TPU_VAR")}
  expected = set(variables.expected_shapes(settings.model))
  assert expected <= set(masters)  # Released names, on the host.
  assert {masters[n] for n in expected} == {HOST}
  assert sum(n.endswith("shared/embedding_slice_0") or n.endswith("shared/embedding_slice_1")
             for n in slices) == 2  # One slice of the embedding per core.
  assert {d.rsplit(":", 1)[-1] for d in slices.values()} == {"0", "1"}  # Both cores.
  op_types = {op.type for op in graph.get_operations()}
  assert "CrossReplicaSum" in op_types  # d_ff and heads are split over the 2 cores.


@pytest.mark.parametrize("beam", [1, 4])
def test_decode_graph_lowers_on_simd_mesh(tmp_path, beam):
  _, spec = _build(_settings(tmp_path, beam_size=beam), ModeKeys.PREDICT)
  assert isinstance(spec, tpu_estimator.TPUEstimatorSpec)
  assert spec.predictions["outputs"].shape.as_list() == [4, 4]


def test_mesh_must_match_the_cores(tmp_path):
  settings = _settings(tmp_path)
  settings.mesh_shape = "model:4"
  with pytest.raises(ValueError, match="mesh_shape 'model:4' has 4 processors but the TPU has 2"):
    _build(settings, ModeKeys.TRAIN)


def test_tpu_flag_builds_a_tpu_estimator(tmp_path):
  settings = _settings(tmp_path, tpu="grpc://10.0.0.2:8470", iterations_per_loop=50)
  est = loop._estimator(settings)
  assert isinstance(est, tpu_estimator.TPUEstimator)
  assert est.config.tpu_config.iterations_per_loop == 50
  assert est.config.tpu_config.per_host_input_for_training == \
      tpu_config.InputPipelineConfig.BROADCAST  # The whole batch to every host, as mtf expects.
  assert est.config.master == "grpc://10.0.0.2:8470"
