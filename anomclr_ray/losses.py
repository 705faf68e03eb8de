"""Contrastive losses on head outputs (B, D); inputs are L2-normalised inside.

Notation: z = normalised head output of the event, z' of its physical augmentation, z* of its anomaly
augmentation, s = cosine similarity, tau = temperature. The 2B anchors are the events and their
physical views; each anchor's partner is the other view of the same event and its anomaly is z* of
the same event. All three losses share `_anchor_logits`; none builds a (2B, 2B, D) tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("clr", "anomclr", "anomclr_plus")


def _views(h: torch.Tensor, h_phys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised anchors u (2B, D) and, row by row, their partners (the other view)."""
    if h.shape != h_phys.shape or h.ndim != 2:
        raise ValueError(f"losses: expected two (B, D) tensors of equal shape, got {tuple(h.shape)} and {tuple(h_phys.shape)}")
    z, zp = F.normalize(h, dim=1), F.normalize(h_phys, dim=1)
    return torch.cat([z, zp]), torch.cat([zp, z])


def _anchor_logits(h, h_phys, h_anom, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(anchors u (2B, D), positive logit per anchor (2B,)): s(u, partner)/tau, minus s(u, z*)/tau if h_anom."""
    if temperature <= 0:
        raise ValueError(f"losses: temperature must be > 0, got {temperature}")
    u, partner = _views(h, h_phys)
    logit = (u * partner).sum(1)
    if h_anom is not None:
        za = F.normalize(h_anom, dim=1)
        logit = logit - (u * torch.cat([za, za])).sum(1)
    return u, logit / temperature


def _nt_xent(u: torch.Tensor, positive_logit: torch.Tensor, temperature: float) -> torch.Tensor:
    """mean over anchors of -log(exp(positive) / sum_{k != i} exp(s(u_i, u_k)/tau)); (2B, 2B) similarities only."""
    sim = u @ u.T / temperature
    sim = sim.masked_fill(torch.eye(len(u), dtype=torch.bool, device=u.device), float("-inf"))
    return (torch.logsumexp(sim, dim=1) - positive_logit).mean()


def clr_loss(h: torch.Tensor, h_phys: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent (paper Eq. 2): positives (x, x'), negatives all other views in the batch."""
    u, pos = _anchor_logits(h, h_phys, None, temperature)
    return _nt_xent(u, pos, temperature)


def anomclr_loss(h: torch.Tensor, h_phys: torch.Tensor, h_anom: torch.Tensor, temperature: float) -> torch.Tensor:
    """AnomCLR (Eq. 4): NT-Xent whose positive term is exp((s(z, z') - s(z, z*))/tau)."""
    u, pos = _anchor_logits(h, h_phys, h_anom, temperature)
    return _nt_xent(u, pos, temperature)


def anomclr_plus_loss(h: torch.Tensor, h_phys: torch.Tensor, h_anom: torch.Tensor, temperature: float) -> torch.Tensor:
    """AnomCLR+ (Eq. 5): mean over anchors of (s(z, z*) - s(z, z'))/tau; no denominator, O(B D)."""
    _, pos = _anchor_logits(h, h_phys, h_anom, temperature)
    return -pos.mean()


def contrastive_loss(name: str, h, h_phys, h_anom, temperature: float) -> torch.Tensor:
    """Dispatch by loss name ('clr', 'anomclr', 'anomclr_plus')."""
    if name == "clr":
        return clr_loss(h, h_phys, temperature)
    if name == "anomclr":
        return anomclr_loss(h, h_phys, h_anom, temperature)
    if name == "anomclr_plus":
        return anomclr_plus_loss(h, h_phys, h_anom, temperature)
    raise ValueError(f"unknown loss {name!r}: expected one of {', '.join(LOSSES)}")
