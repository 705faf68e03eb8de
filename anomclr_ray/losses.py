"""Contrastive losses on head outputs (B, D), with the published AnomalyCLR semantics (DESIGN.md section 5).

Notation: h, h', h* = head outputs of the events, of their physical views and of their anomaly views;
z = h/|h| etc.; s(a, b) = a.b for unit vectors; tau = temperature. The 2B anchors are
a in {z_1..z_B, z'_1..z'_B}; the partner p(a) of z_i is z'_i and of z'_i is z_i. The negatives N(a) of
an anchor are all 2B views except a itself and its partner (JetCLR / AnomalyCLR Eq. 2 sums over j != i,
both views of j; the published code masks the diagonal and both +-B off-diagonals).

- CLR (Eq. 2):      L = 1/(2B) sum_a -log[ exp(s(a, p(a))/tau) / sum_{k in N(a)} exp(s(a, k)/tau) ]
- AnomCLR (Eq. 4):  the numerator becomes exp((s(a, p(a)) - s(z_i, z*_i))/tau), i = a's event: the
                    anomaly term is the un-augmented event against its anomaly view, for both anchors.
- AnomCLR+ (Eq. 5): L = 1/(2B) sum_a (s(z_i, z*_i) - s(a, p(a)))/tau; no denominator, O(B D). The paper
                    drops tau here, the published code divides by it (a scale): we follow the code.

Under DDP every worker holds a contiguous share of the global batch (`Shard`). The negatives are the
views of the whole global batch, gathered with gradients; each worker's loss is the mean over its own
anchors, so the mean over workers is the global loss and DDP's averaged gradient is its gradient.
No (2B, 2B, D) tensor is built anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

LOSSES = ("clr", "anomclr", "anomclr_plus")


@dataclass(frozen=True)
class Shard:
    """This process's part of a global batch: worker `rank` of `world` holds events
    [rank * B, (rank + 1) * B) of the world * B, where B is its local batch size."""

    rank: int = 0
    world: int = 1

    def gather(self, t: torch.Tensor) -> torch.Tensor:
        """(B, D) local -> (world * B, D) global in batch order; gradients flow back to each owner."""
        if self.world == 1:
            return t
        from torch.distributed.nn.functional import all_gather

        return torch.cat(all_gather(t.contiguous()))


LOCAL = Shard()


def _unit(*hs: torch.Tensor | None) -> list[torch.Tensor | None]:
    shapes = {tuple(h.shape) for h in hs if h is not None}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"losses: expected (B, D) head outputs of equal shape, got "
                         f"{', '.join(str(tuple(h.shape)) for h in hs if h is not None)}")
    return [None if h is None else F.normalize(h, dim=1) for h in hs]


def _positive_logits(z: torch.Tensor, zp: torch.Tensor, za: torch.Tensor | None, temperature: float) -> torch.Tensor:
    """(2B,) numerator logits of the anchors [z; z']: s(a, p(a))/tau, minus s(z_i, z*_i)/tau with anomalies."""
    if not temperature > 0:
        raise ValueError(f"losses: temperature must be > 0, got {temperature}")
    pos = (z * zp).sum(1)
    if za is not None:
        pos = pos - (z * za).sum(1)
    return torch.cat([pos, pos]) / temperature


def _log_negatives(z: torch.Tensor, zp: torch.Tensor, temperature: float, shard: Shard) -> torch.Tensor:
    """(2B,) log sum_{k in N(a)} exp(s(a, k)/tau) for the local anchors a = [z; z'], k over the global views."""
    b = len(z)
    g = b * shard.world  # global batch
    if g < 2:
        raise ValueError("losses: a global batch of 1 event has no negatives (clr/anomclr need >= 2 events)")
    keys = torch.cat([shard.gather(z), shard.gather(zp)])  # (2G, D): all events, then all physical views
    sim = torch.cat([z, zp]) @ keys.T / temperature  # (2B, 2G)
    event = (shard.rank * b + torch.arange(b, device=z.device)).repeat(2)  # global event of each anchor
    cols = torch.arange(2 * g, device=z.device)
    not_negative = (cols == event[:, None]) | (cols == event[:, None] + g)  # the anchor and its partner
    return torch.logsumexp(sim.masked_fill(not_negative, float("-inf")), dim=1)


def clr_loss(h: torch.Tensor, h_phys: torch.Tensor, temperature: float, shard: Shard = LOCAL) -> torch.Tensor:
    """CLR, Eq. 2: positives (z, z'), negatives all other events' views of the global batch."""
    z, zp = _unit(h, h_phys)
    return (_log_negatives(z, zp, temperature, shard) - _positive_logits(z, zp, None, temperature)).mean()


def anomclr_loss(h: torch.Tensor, h_phys: torch.Tensor, h_anom: torch.Tensor, temperature: float,
                 shard: Shard = LOCAL) -> torch.Tensor:
    """AnomCLR, Eq. 4: CLR with numerator exp((s(a, p(a)) - s(z_i, z*_i))/tau)."""
    z, zp, za = _unit(h, h_phys, h_anom)
    return (_log_negatives(z, zp, temperature, shard) - _positive_logits(z, zp, za, temperature)).mean()


def anomclr_plus_loss(h: torch.Tensor, h_phys: torch.Tensor, h_anom: torch.Tensor, temperature: float,
                      shard: Shard = LOCAL) -> torch.Tensor:
    """AnomCLR+, Eq. 5: mean over anchors of (s(z_i, z*_i) - s(a, p(a)))/tau; O(B D), nothing gathered."""
    z, zp, za = _unit(h, h_phys, h_anom)
    return -_positive_logits(z, zp, za, temperature).mean()


def contrastive_loss(name: str, h, h_phys, h_anom, temperature: float, shard: Shard = LOCAL) -> torch.Tensor:
    """Dispatch by loss name ('clr', 'anomclr', 'anomclr_plus'); `shard` places h in a DDP global batch."""
    if name == "clr":
        return clr_loss(h, h_phys, temperature, shard)
    if name == "anomclr":
        return anomclr_loss(h, h_phys, h_anom, temperature, shard)
    if name == "anomclr_plus":
        return anomclr_plus_loss(h, h_phys, h_anom, temperature, shard)
    raise ValueError(f"unknown loss {name!r}: expected one of {', '.join(LOSSES)}")
