"""Contrastive pretraining on one device: the step, the loop, checkpoints and representations.

The same `contrastive_step` runs inside Ray Train workers (DDP) for distributed studies.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import augment
from .events.preprocess import Preprocessor
from .losses import LOSSES, contrastive_loss
from .model import Encoder, ModelConfig


@dataclass(frozen=True)
class TrainConfig:
    loss: str = "anomclr_plus"
    temperature: float = 0.1
    mix: str = "all"
    learning_rate: float = 5e-5
    batch_size: int = 256
    epochs: int = 10
    seed: int = 0
    augment_strength: float = 1.0

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"TrainConfig.loss: unknown loss {self.loss!r}: expected one of {', '.join(LOSSES)}")
        augment.parse_mix(self.mix)
        if not self.temperature > 0:
            raise ValueError(f"TrainConfig.temperature must be > 0, got {self.temperature}")
        if not self.learning_rate > 0:
            raise ValueError(f"TrainConfig.learning_rate must be > 0, got {self.learning_rate}")
        if self.batch_size < 2 or self.epochs < 1:
            raise ValueError(f"TrainConfig: batch_size >= 2 and epochs >= 1 needed, got {self.batch_size}, {self.epochs}")

    def to_dict(self) -> dict:
        return asdict(self)


def choose_device(name: str = "auto") -> torch.device:
    """The one place a device is chosen: CUDA when present (or asked for), else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available here")
    return torch.device(name)


def contrastive_step(model: torch.nn.Module, x: torch.Tensor, pre: Preprocessor, cfg: TrainConfig,
                     generator: torch.Generator) -> torch.Tensor:
    """Loss of one batch x (B, 19, 4) physical units, on x's device: augment, preprocess, encode, loss."""
    views = [x, augment.physical(x, generator, cfg.augment_strength)]
    if cfg.loss != "clr":
        views.append(augment.anomalous(x, cfg.mix, generator))
    h = model(pre(torch.cat(views))).split(len(x))
    return contrastive_loss(cfg.loss, h[0], h[1], h[2] if len(h) > 2 else None, cfg.temperature)


def pretrain(events: np.ndarray, pre: Preprocessor, model_cfg: ModelConfig, cfg: TrainConfig,
             device: torch.device, log: Callable[[str], None] | None = print) -> tuple[Encoder, list[float]]:
    """Train an encoder on background events (N, 19, 4); returns it and the per-epoch mean loss."""
    if cfg.batch_size > len(events):
        raise ValueError(f"TrainConfig.batch_size ({cfg.batch_size}) is larger than the {len(events)} training events")
    torch.manual_seed(cfg.seed)
    model = Encoder(model_cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, betas=(0.9, 0.999))
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    order_gen = torch.Generator().manual_seed(cfg.seed)
    data = torch.as_tensor(events, device=device)
    history = []
    for epoch in range(cfg.epochs):
        model.train()
        t0, total, n_batches = time.perf_counter(), 0.0, 0
        order = torch.randperm(len(data), generator=order_gen).to(device)
        for i, idx in enumerate(order.split(cfg.batch_size)):
            if len(idx) < 2:
                continue
            loss = contrastive_step(model, data[idx], pre, cfg, gen)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"pretrain: loss is {loss.item()} at epoch {epoch} batch {i}")
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
            n_batches += 1
        history.append(total / n_batches)
        if log:
            rate = len(data) / (time.perf_counter() - t0)
            log(f"epoch {epoch + 1}/{cfg.epochs}: loss {history[-1]:.4f}, {rate:.0f} events/s on {device}")
    return model, history


@torch.no_grad()
def represent(model: Encoder, pre: Preprocessor, events: np.ndarray, device: torch.device,
              batch_size: int = 4096) -> torch.Tensor:
    """Representations (N, model_dim) of events (N, 19, 4), on the CPU."""
    model.eval()
    x = torch.as_tensor(events)
    return torch.cat([model.represent(pre(b.to(device))).cpu() for b in x.split(batch_size)])


def save_checkpoint(path: str | Path, model: Encoder, pre: Preprocessor, cfg: TrainConfig, history: list[float]) -> None:
    """Model weights with everything needed to use them: model and train config, preprocessing scales."""
    torch.save({"model_config": model.cfg.to_dict(), "train_config": cfg.to_dict(), "preprocessor": pre.to_dict(),
                "state_dict": model.state_dict(), "history": history}, path)


def load_checkpoint(path: str | Path, device: torch.device) -> tuple[Encoder, Preprocessor, TrainConfig]:
    ck = torch.load(path, map_location=device, weights_only=True)
    model = Encoder(ModelConfig(**ck["model_config"])).to(device)
    model.load_state_dict(ck["state_dict"])
    return model, Preprocessor.from_dict(ck["preprocessor"]), TrainConfig(**ck["train_config"])
