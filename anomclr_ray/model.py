"""The permutation-invariant transformer encoder (DESIGN.md section 5).

Per object: linear embedding of (pT, eta, phi scaled, one-hot type) -> transformer encoder layers with a
key-padding mask for empty slots -> masked sum over objects = the representation -> head MLP. The
loss sees the head output; downstream scoring uses the representation. No positional encoding, so the
encoder is invariant to the order of the objects, and empty slots change nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .events.preprocess import N_INPUT_FEATURES


@dataclass(frozen=True)
class ModelConfig:
    """Encoder hyper-parameters. Defaults: the authors' published code and tutorial (DESIGN.md)."""

    model_dim: int = 136
    heads: int = 4
    layers: int = 4
    feedforward_dim: int | None = None  # None: the model dimension (so a dimension scan moves all three)
    output_dim: int | None = None  # head output; None: the model dimension
    head_layers: int = 2
    dropout: float = 0.1

    def __post_init__(self):
        for name in ("model_dim", "heads", "layers", "feedforward_dim", "output_dim", "head_layers"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.model_dim % self.heads:
            raise ValueError(f"ModelConfig.model_dim ({self.model_dim}) must be a multiple of heads ({self.heads})")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"ModelConfig.dropout must be in [0, 1), got {self.dropout}")

    @property
    def ff_dim(self) -> int:
        return self.feedforward_dim or self.model_dim

    @property
    def out_dim(self) -> int:
        return self.output_dim or self.model_dim

    def to_dict(self) -> dict:
        return asdict(self)


def padding_mask(x: torch.Tensor) -> torch.Tensor:
    """(B, 19) True on empty slots of preprocessed events (B, 19, 7): their one-hot type is all zero."""
    return x[..., 3:].sum(-1) == 0


class Encoder(nn.Module):
    """`forward`: (B, 19, 7) preprocessed events -> (B, output_dim) head output.
    `represent`: -> (B, model_dim) pooled representation before the head."""

    def __init__(self, cfg: ModelConfig = ModelConfig()):
        super().__init__()
        self.cfg = cfg
        d = cfg.model_dim
        self.embed = nn.Linear(N_INPUT_FEATURES, d)
        layer = nn.TransformerEncoderLayer(d, cfg.heads, cfg.ff_dim, cfg.dropout, batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        head: list[nn.Module] = []
        for _ in range(cfg.head_layers - 1):
            head += [nn.Linear(d, d), nn.ReLU()]
        head.append(nn.Linear(d, cfg.out_dim))
        self.head = nn.Sequential(*head)

    def represent(self, x: torch.Tensor) -> torch.Tensor:
        mask = padding_mask(x)
        h = self.transformer(self.embed(x), src_key_padding_mask=mask)
        return h.masked_fill(mask[..., None], 0.0).sum(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.represent(x))
