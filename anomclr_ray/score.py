"""Anomaly scoring: an autoencoder trained on background inputs; score = per-event reconstruction MSE.

Inputs are CLR representations (B, D) or, for the AE-Raw baseline, preprocessed raw events flattened
to (B, 19 * 7). Inputs are standardised with the training mean and std (kept in the model).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ScoreConfig:
    """Autoencoder: MLP `hidden` -> `bottleneck` -> mirrored decoder, LeakyReLU, Adam, MSE."""

    bottleneck: int = 5
    hidden: tuple[int, ...] = (256, 128, 64, 32, 16)
    learning_rate: float = 1e-3
    epochs: int = 50
    batch_size: int = 512
    patience: int = 5  # early stopping on the background validation split
    validation_fraction: float = 0.2

    def __post_init__(self):
        if self.bottleneck < 1:
            raise ValueError(f"ScoreConfig.bottleneck must be >= 1, got {self.bottleneck}")
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"ScoreConfig.validation_fraction must be in (0, 1), got {self.validation_fraction}")
        if self.learning_rate <= 0 or self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise ValueError("ScoreConfig: learning_rate, epochs, batch_size and patience must be positive")

    def check_input_dim(self, input_dim: int) -> None:
        if self.bottleneck >= input_dim:
            raise ValueError(f"ScoreConfig.bottleneck ({self.bottleneck}) must be smaller than the input "
                             f"dimension ({input_dim})")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d


class AutoEncoder(nn.Module):
    def __init__(self, input_dim: int, cfg: ScoreConfig = ScoreConfig()):
        super().__init__()
        cfg.check_input_dim(input_dim)
        widths = [input_dim, *cfg.hidden, cfg.bottleneck]
        enc: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            enc += [nn.Linear(a, b), nn.LeakyReLU()]
        dec: list[nn.Module] = []
        back = widths[::-1]
        for a, b in zip(back[:-1], back[1:]):
            dec += [nn.Linear(a, b), nn.LeakyReLU()]
        self.encoder = nn.Sequential(*enc[:-1])  # linear bottleneck
        self.decoder = nn.Sequential(*dec[:-1])  # linear output
        self.register_buffer("mean", torch.zeros(input_dim))
        self.register_buffer("std", torch.ones(input_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean) / self.std
        return self.decoder(self.encoder(z))

    def score(self, x: torch.Tensor, batch_size: int = 8192) -> torch.Tensor:
        """Per-event MSE between standardised input and reconstruction, (B,)."""
        self.eval()
        out = []
        with torch.no_grad():
            for chunk in x.split(batch_size):
                z = (chunk - self.mean) / self.std
                out.append(((self.decoder(self.encoder(z)) - z) ** 2).mean(1))
        return torch.cat(out)


def fit_autoencoder(x: torch.Tensor, cfg: ScoreConfig, generator: torch.Generator) -> tuple[AutoEncoder, list[float]]:
    """Train on background inputs x (N, D) with early stopping; returns the best model and val losses."""
    n_val = max(1, int(len(x) * cfg.validation_fraction))
    perm = torch.randperm(len(x), generator=generator, device="cpu").to(x.device)
    val, train = x[perm[:n_val]], x[perm[n_val:]]
    if len(train) < cfg.batch_size:
        raise ValueError(f"ScoreConfig.batch_size ({cfg.batch_size}) is larger than the {len(train)} training events")
    torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))  # weight init
    ae = AutoEncoder(x.shape[1], cfg).to(x.device)
    ae.mean.copy_(train.mean(0))
    ae.std.copy_(train.std(0).clamp(min=1e-6))
    opt = torch.optim.Adam(ae.parameters(), lr=cfg.learning_rate)
    best, best_state, history, stale = float("inf"), None, [], 0
    for _ in range(cfg.epochs):
        ae.train()
        order = torch.randperm(len(train), generator=generator, device="cpu").to(x.device)
        for idx in order.split(cfg.batch_size):
            z = (train[idx] - ae.mean) / ae.std
            loss = ((ae.decoder(ae.encoder(z)) - z) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        v = float(ae.score(val).mean())
        history.append(v)
        if v < best - 1e-6:
            best, best_state, stale = v, copy.deepcopy(ae.state_dict()), 0
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    ae.load_state_dict(best_state)
    return ae, history
