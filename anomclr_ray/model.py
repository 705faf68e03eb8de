"""The permutation-invariant transformer encoder (DESIGN.md section 5).

Per object: linear embedding of (pT, eta, phi scaled, one-hot type) -> transformer encoder layers
(post-norm, as torch's `TransformerEncoderLayer`) in which each object attends to the objects of its
own event -> sum over objects = the representation -> head MLP. The loss sees the head output;
downstream scoring uses the representation. No positional encoding, so the encoder is invariant to
the order of the objects, and empty slots change nothing.

An event fills 3.7 of its 19 slots on average (the shipped background), so the encoder computes on the
filled slots only (`represent`): the per-object work (embedding, attention projections, feed-forward,
layer norms) runs on the packed (N_objects, d) objects of the batch, and attention on the objects padded
to the largest multiplicity in the batch. `represent_padded` is the same network run over all 19 slots
with a key-padding mask (torch's `TransformerEncoder`): the reference the packed path is tested against.
Both use the same parameters, so checkpoints serve either.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
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
    packed: bool = True  # compute on the filled slots only; False: over all 19 slots (same result, slower)

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
        """(B, 19, 7) preprocessed events -> (B, model_dim) representation before the head."""
        return self.represent_packed(x) if self.cfg.packed else self.represent_padded(x)

    def represent_packed(self, x: torch.Tensor) -> torch.Tensor:
        """The representation computed on the filled slots only."""
        filled = ~padding_mask(x)
        events, slots = filled.nonzero(as_tuple=True)  # event-major: each event's objects in slot order
        packed = Packing.of(filled, events, slots)
        h = self.embed(x[events, slots])  # (N_objects, d)
        for layer in self.transformer.layers:
            h = _encoder_layer(layer, h, packed)
        return h.new_zeros(x.shape[0], h.shape[1]).index_add_(0, events, h)

    def represent_padded(self, x: torch.Tensor) -> torch.Tensor:
        """The same representation computed over all 19 slots with a key-padding mask (the reference)."""
        mask = padding_mask(x)
        h = self.transformer(self.embed(x), src_key_padding_mask=mask)
        return h.masked_fill(mask[..., None], 0.0).sum(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.represent(x))


@dataclass(frozen=True)
class Packing:
    """Where the packed objects (N,) sit: their event and their place in it; the batch, the largest
    multiplicity in it (attention is padded to that, not to 19) and the attention's key mask."""

    events: torch.Tensor
    rank: torch.Tensor
    batch: int
    width: int
    key_mask: torch.Tensor  # (B, 1, 1, width) True where a key is one of the event's objects

    @classmethod
    def of(cls, filled: torch.Tensor, events: torch.Tensor, slots: torch.Tensor) -> "Packing":
        """From the (B, 19) filled-slot mask and its nonzero (event, slot) pairs, in event-major order."""
        counts = filled.sum(1)
        width = int(counts.max())
        rank = (filled.cumsum(1) - 1)[events, slots]  # an object's place among its event's objects
        key_mask = (torch.arange(width, device=filled.device) < counts[:, None])[:, None, None, :]
        return cls(events, rank, filled.shape[0], width, key_mask)

    def pad(self, h: torch.Tensor) -> torch.Tensor:
        """(N, f) -> (B, width, f), zeros where an event has fewer objects."""
        return h.new_zeros(self.batch, self.width, h.shape[1]).index_put((self.events, self.rank), h)

    def unpad(self, h: torch.Tensor) -> torch.Tensor:
        return h[self.events, self.rank]


def _encoder_layer(layer: nn.TransformerEncoderLayer, h: torch.Tensor, packed: Packing) -> torch.Tensor:
    """torch's post-norm `TransformerEncoderLayer` (ReLU) on packed objects (N, d), with its parameters:
    norm1(h + attention among the event's objects), then norm2(h + feed-forward)."""
    attn = layer.self_attn
    d, heads = h.shape[1], attn.num_heads
    qkv = packed.pad(F.linear(h, attn.in_proj_weight, attn.in_proj_bias))  # (B, W, 3d)
    q, k, v = qkv.view(packed.batch, packed.width, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=packed.key_mask,
                                       dropout_p=attn.dropout if layer.training else 0.0)
    o = packed.unpad(o.transpose(1, 2).reshape(packed.batch, packed.width, d))
    h = layer.norm1(h + layer.dropout1(attn.out_proj(o)))
    return layer.norm2(h + layer.dropout2(layer.linear2(layer.dropout(layer.activation(layer.linear1(h))))))
