"""The permutation-invariant transformer encoder (docs/method.md).

Per object: linear embedding of (pT, eta, phi scaled, one-hot type) -> transformer encoder layers
(post-norm, as torch's `TransformerEncoderLayer`) in which each object attends to the objects of its
own event -> sum over objects = the representation -> head MLP. The loss sees the head output;
downstream scoring uses the representation. No positional encoding, so the encoder is invariant to
the order of the objects, and empty slots change nothing.

An event fills 3.7 of its 19 slots on average (the shipped background), so the encoder computes on the
filled slots only (`represent`): the per-object work (embedding, attention projections, feed-forward,
layer norms) runs on the packed (N_objects, d) objects of the batch, ordered by their event's
multiplicity, so that the events with n objects are one dense (events, n, d) block and attention runs
per block without a mask or padding (the anomaly views put an event with 17-19 objects in every batch
of 256; padding to it cost nearly all 19 slots). `represent_padded` is the same network run over all
19 slots with a key-padding mask (torch's `TransformerEncoder`): the reference the packed path is tested
against. Both use the same parameters, so checkpoints serve either.

The companion method (Metzger et al., arXiv:2502.15926) adds two options. `embedding_dim` projects the
representation linearly to a low-dimensional embedding (their default 4), which is then what the head
(their "expander") and everything downstream see. `kind = "mlp"` is their MLP on the flattened event:
the 19 slots' (pT, eta, phi) after the shared preprocessing (57 features; the slot says the type) ->
Linear, BatchNorm, LeakyReLU per width of `mlp_widths` (theirs: 96, 64, 48) -> the embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..events import layout as L
from ..events.preprocess import N_INPUT_FEATURES, N_KINEMATIC, Preprocessor

KINDS = ("transformer", "mlp")


@dataclass(frozen=True)
class ModelConfig:
    """Encoder hyper-parameters. Defaults: the authors' published code and tutorial (docs/method.md)."""

    model_dim: int = 136
    heads: int = 4
    layers: int = 4
    feedforward_dim: int | None = None  # None: the model dimension (so a dimension scan moves all three)
    output_dim: int | None = None  # head output; None: the model dimension
    head_layers: int = 2
    dropout: float = 0.1
    packed: bool = True  # compute on the filled slots only; False: over all 19 slots (same result, slower)
    kind: str = "transformer"  # or "mlp": the companion method's MLP on the flattened event
    embedding_dim: int | None = None  # a linear projection to this many dimensions is the representation
    mlp_widths: tuple[int, ...] = (96, 64, 48)  # kind "mlp": its hidden layers

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConfigError(f"ModelConfig.kind: unknown {self.kind!r}, expected one of {', '.join(KINDS)}")
        for name in ("model_dim", "heads", "layers", "feedforward_dim", "output_dim", "head_layers", "embedding_dim"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not self.mlp_widths or min(self.mlp_widths) < 1:
            raise ConfigError(f"ModelConfig.mlp_widths must be positive widths, got {self.mlp_widths}")
        if self.kind == "transformer" and self.model_dim % self.heads:
            raise ConfigError(f"ModelConfig.model_dim ({self.model_dim}) must be a multiple of heads ({self.heads})")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"ModelConfig.dropout must be in [0, 1), got {self.dropout}")

    @property
    def ff_dim(self) -> int:
        return self.feedforward_dim or self.model_dim

    @property
    def out_dim(self) -> int:
        return self.output_dim or self.model_dim

    @property
    def rep_dim(self) -> int:
        """The representation's dimension (what the AE scores): the embedding's, else the model's."""
        return self.embedding_dim or self.model_dim


def build_encoder(cfg: ModelConfig) -> nn.Module:
    """The encoder `cfg.kind` names; both have `represent` (B, 19, 7) -> (B, rep_dim) and `forward`
    -> (B, out_dim), the head's output the losses see."""
    return Encoder(cfg) if cfg.kind == "transformer" else MLPEncoder(cfg)


@torch.no_grad()
def represent(model: torch.nn.Module, pre: Preprocessor, events: np.ndarray, device: torch.device,
              batch_size: int = 4096) -> torch.Tensor:
    """Representations (N, model_dim) of events (N, 19, 4), on the CPU."""
    model.eval()
    x = torch.as_tensor(events)
    return torch.cat([model.represent(pre(b.to(device))).cpu() for b in x.split(batch_size)])


def _head(cfg: ModelConfig) -> nn.Sequential:
    """The head (expander): (head_layers - 1) x [Linear, ReLU] at the representation's width, then a
    Linear to out_dim."""
    layers: list[nn.Module] = []
    for _ in range(cfg.head_layers - 1):
        layers += [nn.Linear(cfg.rep_dim, cfg.rep_dim), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(cfg.rep_dim, cfg.out_dim))


def padding_mask(x: torch.Tensor) -> torch.Tensor:
    """(B, 19) True on empty slots of preprocessed events (B, 19, 7): their one-hot type is all zero."""
    return x[..., N_KINEMATIC:].sum(-1) == 0


class Encoder(nn.Module):
    """The transformer. `forward`: (B, 19, 7) preprocessed events -> (B, output_dim) head output.
    `represent`: -> (B, rep_dim) pooled representation (projected to the embedding, if any) before the head."""

    def __init__(self, cfg: ModelConfig = ModelConfig()):
        super().__init__()
        self.cfg = cfg
        d = cfg.model_dim
        self.embed = nn.Linear(N_INPUT_FEATURES, d)
        layer = nn.TransformerEncoderLayer(d, cfg.heads, cfg.ff_dim, cfg.dropout, batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.project = nn.Linear(d, cfg.embedding_dim) if cfg.embedding_dim else nn.Identity()
        self.head = _head(cfg)

    def represent(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 19, 7) preprocessed events -> (B, rep_dim) representation before the head."""
        return self.project(self.represent_packed(x) if self.cfg.packed else self.represent_padded(x))

    def represent_packed(self, x: torch.Tensor) -> torch.Tensor:
        """The representation computed on the filled slots only."""
        packed = Packing.of(~padding_mask(x))
        h = self.embed(x[packed.events, packed.slots])  # (N_objects, d)
        for layer in self.transformer.layers:
            h = _encoder_layer(layer, h, packed)
        return h.new_zeros(x.shape[0], h.shape[1]).index_add_(0, packed.events, h)

    def represent_padded(self, x: torch.Tensor) -> torch.Tensor:
        """The same representation computed over all 19 slots with a key-padding mask (the reference)."""
        mask = padding_mask(x)
        h = self.transformer(self.embed(x), src_key_padding_mask=mask)
        return h.masked_fill(mask[..., None], 0.0).sum(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.represent(x))


class MLPEncoder(nn.Module):
    """The companion method's MLP: (B, 19, 7) -> the slots' (pT, eta, phi) flattened (B, 57) ->
    [Linear, BatchNorm, LeakyReLU] per width -> Linear to the embedding (B, rep_dim) -> the head."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        widths = [L.N_SLOTS * N_KINEMATIC, *cfg.mlp_widths]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.LeakyReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(widths[-1], cfg.rep_dim))
        self.head = _head(cfg)

    def represent(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x[..., :N_KINEMATIC].flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.represent(x))


@dataclass(frozen=True)
class Packing:
    """The batch's filled slots as packed objects: object i is slot `slots[i]` of event `events[i]`. Events
    are ordered by multiplicity (stably) and each event's objects are contiguous in slot order, so the
    `blocks` ((n, number of events with n objects), in packed order) tile the objects into dense
    (events, n) blocks."""

    events: torch.Tensor
    slots: torch.Tensor
    blocks: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, filled: torch.Tensor) -> "Packing":
        """From the (B, 19) filled-slot mask."""
        counts = filled.sum(1)
        order = torch.sort(counts, stable=True).indices
        events, slots = filled[order].nonzero(as_tuple=True)  # event-major in the sorted order
        n, size = torch.unique_consecutive(counts[order], return_counts=True)
        blocks = tuple((a, b) for a, b in zip(n.tolist(), size.tolist()) if a > 0)
        return cls(order[events], slots, blocks)


def _attention(qkv: torch.Tensor, packed: Packing, heads: int, dropout: float) -> torch.Tensor:
    """Multi-head attention among each event's objects: packed (N, 3d) projections -> (N, d), one dense
    block of events per multiplicity."""
    d = qkv.shape[1] // 3
    out = []
    for (n, events), block in zip(packed.blocks, qkv.split([n * events for n, events in packed.blocks])):
        q, k, v = block.view(events, n, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
        out.append(o.transpose(1, 2).reshape(n * events, d))
    return torch.cat(out) if out else qkv[:, :d]  # a batch without objects


def _encoder_layer(layer: nn.TransformerEncoderLayer, h: torch.Tensor, packed: Packing) -> torch.Tensor:
    """torch's post-norm `TransformerEncoderLayer` (ReLU) on packed objects (N, d), with its parameters:
    norm1(h + attention among the event's objects), then norm2(h + feed-forward)."""
    attn = layer.self_attn
    o = _attention(F.linear(h, attn.in_proj_weight, attn.in_proj_bias), packed, attn.num_heads,
                   attn.dropout if layer.training else 0.0)
    h = layer.norm1(h + layer.dropout1(attn.out_proj(o)))
    return layer.norm2(h + layer.dropout2(layer.linear2(layer.dropout(layer.activation(layer.linear1(h))))))
