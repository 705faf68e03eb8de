"""Trained encoders on disk: checkpoints (weights with their configs, preprocessing and loss history)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..configs import from_plain, to_plain
from ..events.preprocess import Preprocessor
from ..method.model import ModelConfig, build_encoder
from .config import TrainConfig


def save_checkpoint(path: str | Path, model: torch.nn.Module, pre: Preprocessor, cfg: TrainConfig, history: list[float],
                    **extra) -> None:
    """Model weights with everything needed to use them: model and train config, preprocessing scales,
    loss history; `extra` (e.g. optimizer state and epoch, for resuming) is stored beside them."""
    torch.save({"model_config": to_plain(model.cfg), "train_config": to_plain(cfg), "preprocessor": to_plain(pre),
                "state_dict": model.state_dict(), "history": history, **extra}, path)


def read_state(path: str | Path, device: torch.device) -> dict:
    """The stored state of a `save_checkpoint` file (tensors on `device`; plain data only)."""
    return torch.load(path, map_location=device, weights_only=True)


def read_checkpoint(path: str | Path, device: torch.device) -> tuple[torch.nn.Module, Preprocessor, TrainConfig, dict]:
    """(model, preprocessing, train config, the whole stored state) from a `save_checkpoint` file."""
    state = read_state(path, device)
    model = build_encoder(from_plain(ModelConfig, state["model_config"], f"{path}: model_config")).to(device)
    model.load_state_dict(state["state_dict"])
    return (model, from_plain(Preprocessor, state["preprocessor"], f"{path}: preprocessor"),
            from_plain(TrainConfig, state["train_config"], f"{path}: train_config"), state)


def load_checkpoint(path: str | Path, device: torch.device) -> tuple[torch.nn.Module, Preprocessor, TrainConfig]:
    model, pre, cfg, _ = read_checkpoint(path, device)
    return model, pre, cfg
