"""Contrastive pretraining: its config (`config`), the device (`device`), the step, epoch and training loop
(`loop`), checkpoints (`checkpoint`) and Ray Train's DDP path (`distributed`, imported on its own).

One loop for both paths: `pretrain` runs `new_training` + `train_epochs` on one device, and each Ray
Train worker (DDP, `distributed`) runs the same two on its share of every global batch.
"""

from .checkpoint import load_checkpoint, read_checkpoint, read_state, save_checkpoint
from .config import PRECISIONS, PretrainJob, TrainConfig, check_batch_size
from .device import choose_device
from .loop import contrastive_step, make_views, new_training, physical_view, pretrain, train_epoch, train_epochs

__all__ = ["PRECISIONS", "PretrainJob", "TrainConfig", "check_batch_size", "choose_device", "contrastive_step",
           "load_checkpoint", "make_views", "new_training", "physical_view", "pretrain", "read_checkpoint", "read_state",
           "save_checkpoint", "train_epoch", "train_epochs"]
