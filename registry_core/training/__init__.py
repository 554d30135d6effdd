"""The trainer: imports torch, so ``registry_core`` itself never imports this package.

``Trainer(model, train_data, config, out_dir).fit()`` runs AdamW with decay groups, linear warm-up then
cosine, gradient accumulation, optional bf16 autocast and torch.compile, DDP under ``torchrun``, atomic
checkpoints and exact resume.
"""

from __future__ import annotations

from registry_core.pipeline._train_config import TrainConfig
from registry_core.training.checkpoint import atomic_torch_save, clean_state_dict, load_checkpoint
from registry_core.training.data_order import StripedBatchSampler, epoch_order, global_indices, rank_micro_batches
from registry_core.training.optim import build_optimizer, decay_groups, layer_decay_scales, lr_at, set_lr
from registry_core.training.trainer import Trainer, TrainingDiverged, TrainResult, seed_everything, to_device

__all__ = [
    "StripedBatchSampler",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "atomic_torch_save",
    "build_optimizer",
    "clean_state_dict",
    "decay_groups",
    "epoch_order",
    "global_indices",
    "layer_decay_scales",
    "load_checkpoint",
    "lr_at",
    "rank_micro_batches",
    "seed_everything",
    "set_lr",
    "to_device",
]
