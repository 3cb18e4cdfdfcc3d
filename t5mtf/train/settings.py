"""Everything a run needs, as one gin-configurable dataclass (``RunSettings.x = ...`` in gin).

Paper defaults (§3.1.2): batches of 128 sequences of 512 tokens (2^16 tokens), inputs 512 and
targets 114 for span corruption; checkpoints every 5,000 steps.
"""
import dataclasses
import os
from typing import Callable, Optional, Union

import gin

from t5mtf.models import config as config_lib


@gin.configurable
@dataclasses.dataclass
class RunSettings:
  model_dir: str = gin.REQUIRED  # Set by --model_dir.
  mixture_or_task_name: str = "local_span_corruption"
  model: Optional[config_lib.ModelConfig] = None  # None: ModelConfig() as gin binds it.
  inputs_length: int = 512
  targets_length: int = 114
  batch_size: int = 128  # Sequences per batch.
  tokens_per_batch: int = 0  # If set, batch_size = tokens_per_batch // inputs_length (2^16).
  num_microbatches: int = 1  # Split each batch, accumulate gradients: same step, less memory.
  train_steps: int = 2**19
  save_checkpoints_steps: int = 5000
  keep_checkpoint_max: int = 0  # 0: keep all (§3.1.2 evaluates every checkpoint).
  mesh_shape: str = ""
  layout: str = "batch:batch,d_ff:model,heads:model,vocab:model"
  # One device per mesh processor, e.g. ("/job:worker/task:1/device:GPU:0", ...); empty: this
  # process's CPU, or over a cluster (--worker_hosts) every task's GPUs or CPU (train/cluster.py).
  mesh_devices: tuple = ()
  session_target: str = ""  # Set from --worker_hosts: the chief's gRPC server.
  # A name in optimizers.SCHEDULES or a function of the step (in gin: @triangular).
  learning_rate_schedule: Union[str, Callable] = "rsqrt_decay"
  seed: int = 0
  pack: bool = True
  packing: str = "greedy"  # As released; "first_fit" packs ~25% denser (see data/packing.py).
  init_checkpoint: str = ""  # Fine-tuning: a checkpoint (or model_dir) to start from.
  trainable: str = "all"  # "all" | "adapters" | "gradual_unfreezing" (§3.5.1).
  unfreeze_episode_steps: int = 2**18 // 12
  log_every_steps: int = 100
  # Cloud TPU (set by --tpu, --tpu_zone, --gcp_project): TPUEstimator with SimdMeshImpl.
  tpu: str = ""
  tpu_zone: str = ""
  gcp_project: str = ""
  iterations_per_loop: int = 100  # Steps per TPU session call.
  # Evaluation / prediction.
  eval_tasks: tuple = ()
  eval_split: str = "validation"
  eval_max_examples: int = 0  # 0: all.
  decode_length: int = 0  # 0: targets_length.
  beam_size: int = 1
  alpha: float = 0.6
  beam_search: str = "prefilter"  # As released (lossy top-2 per beam); or "exhaustive".
  predict_kind: str = "decode"  # "decode" | "score".
  ensemble_model_dirs: tuple = ()  # Eval/predict/score an ensemble: logits averaged (§3.6).

  def __post_init__(self):
    for field in dataclasses.fields(self):
      if getattr(self, field.name) is gin.REQUIRED:
        flag = "--model_dir" if field.name == "model_dir" else \
            f"--gin_param=RunSettings.{field.name}=..."
        raise ValueError(f"RunSettings.{field.name} is required: set it with {flag}")
    if not self.model_dir:
      raise ValueError("RunSettings.model_dir is required: set it with --model_dir")
    config_lib.check_field_types(self)
    if self.model is None:
      self.model = config_lib.ModelConfig()
    if not isinstance(self.model, config_lib.ModelConfig):
      raise ValueError(f"RunSettings.model={self.model!r} must be @ModelConfig()")
    if not self.decode_length:
      self.decode_length = self.targets_length
    self._check_numbers()
    if self.tokens_per_batch:
      self.batch_size = max(1, self.tokens_per_batch // self.inputs_length)
    self.model_dir = os.path.abspath(self.model_dir)
    if os.path.exists(self.model_dir) and not os.path.isdir(self.model_dir):
      raise ValueError(f"--model_dir={self.model_dir} is a file, not a folder")
    from t5mtf.data import packing
    from t5mtf.models import decoding
    if self.beam_search not in decoding.BEAM_SEARCHES:
      raise ValueError(f"RunSettings.beam_search={self.beam_search!r} is not one of "
                       f"{list(decoding.BEAM_SEARCHES)}")
    if self.packing not in packing.STRATEGIES:
      raise ValueError(f"RunSettings.packing={self.packing!r} is not one of "
                       f"{list(packing.STRATEGIES)}")
    from t5mtf.models import layout
    layout.check_layout(self.model.dim_sizes(self.batch_size), self.mesh_shape, self.layout)
    if self.mesh_devices and len(self.mesh_devices) != layout.num_devices(self.mesh_shape):
      raise ValueError(f"RunSettings.mesh_devices names {len(self.mesh_devices)} devices but "
                       f"mesh_shape {self.mesh_shape!r} has "
                       f"{layout.num_devices(self.mesh_shape)} processors")

  # name -> smallest valid value (checked up front, so that a bad value fails before any work).
  MINIMUM = {"inputs_length": 2, "targets_length": 2, "batch_size": 1, "num_microbatches": 1,
             "train_steps": 1, "save_checkpoints_steps": 1, "keep_checkpoint_max": 0,
             "log_every_steps": 1, "iterations_per_loop": 1, "eval_max_examples": 0,
             "decode_length": 1, "beam_size": 1, "unfreeze_episode_steps": 1,
             "tokens_per_batch": 0}

  def _check_numbers(self):
    for name, low in self.MINIMUM.items():
      value = getattr(self, name)  # A whole number: check_field_types.
      if value < low:
        raise ValueError(f"RunSettings.{name}={value} must be at least {low}")
    schedule = self.learning_rate_schedule
    if not isinstance(schedule, str) and not callable(schedule):
      raise ValueError(f"RunSettings.learning_rate_schedule={schedule!r} must be a schedule's "
                       "name in quotes or a function of the step (@triangular)")
    from t5mtf.train import optimizers  # Here: optimizers imports mesh-tensorflow.
    optimizers.check_schedule(schedule)
    if not 0 <= self.alpha <= 10:
      raise ValueError(f"RunSettings.alpha={self.alpha} must be in [0, 10] (the paper uses 0.6)")
    if self.trainable not in ("all", "adapters", "gradual_unfreezing"):
      raise ValueError(f"RunSettings.trainable={self.trainable!r} is not one of "
                       "['all', 'adapters', 'gradual_unfreezing']")
    if self.predict_kind not in ("decode", "score"):
      raise ValueError(f"RunSettings.predict_kind={self.predict_kind!r} is not one of "
                       "['decode', 'score']")

  @property
  def sequence_length(self):
    return {"inputs": self.inputs_length, "targets": self.targets_length}

  def extra_train_hooks(self, loss, learning_rate):
    from t5mtf.train import feedback
    return [feedback.ProgressHook(self, loss, learning_rate)]
