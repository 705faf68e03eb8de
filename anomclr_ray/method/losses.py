"""Contrastive losses on head outputs (B, D), with the published AnomalyCLR semantics (the equations: docs/design.md).

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

The companion method's losses (Metzger et al., arXiv:2502.15926) take two views of each event:
- SimCLR (NT-Xent, Chen et al. Eq. 1): L = 1/(2B) sum_a -log[ exp(s(a, p(a))/tau) / sum_{k != a} exp(s(a, k)/tau) ]:
                    CLR with the partner in the denominator.
- SupCon (Khosla et al. Eq. 2, L_out): the positives P(a) of an anchor are every other view whose event
                    has its label (its partner among them); L = 1/(2B) sum_a [ log sum_{k != a} exp(s(a, k)/tau)
                    - 1/|P(a)| sum_{p in P(a)} s(a, p)/tau ].
- VICReg (Bardes et al., as their published code), on the head outputs themselves (not normalised):
                    lambda * mean (h - h')^2 + mu * [v(h) + v(h')] / 2 + nu * [c(h) + c(h')], with
                    v(h) = mean_j relu(1 - sqrt(Var h_j + 1e-4)) and c(h) = sum_{i != j} Cov(h)_ij^2 / D,
                    variance and covariance over the global batch. (cl4ad's variant standardises h before
                    the covariance, a correlation penalty, with unit weights: not this one.)

Each loss is one entry of `LOSSES` (its function, the views it compares, whether it needs process
labels, its label and colour): training, the study vocabulary and the figures read it from there.

Under DDP every worker holds a contiguous share of the global batch (`Shard`). The negatives are the
views of the whole global batch, gathered with gradients; each worker's loss is the mean over its own
anchors, so the mean over workers is the global loss and DDP's averaged gradient is its gradient.
No (2B, 2B, D) tensor is built anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

VICREG_WEIGHTS = (25.0, 25.0, 1.0)  # (invariance, variance, covariance): Bardes et al.'s defaults


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


def _similarities(z: torch.Tensor, zp: torch.Tensor, temperature: float, shard: Shard):
    """s(a, k)/tau of the local anchors a = [z; z'] (2B) against the global views k (2G: all events, then
    all second views), and the masks of k = a and of k = p(a)."""
    if len(z) * shard.world < 2:
        raise ValueError("losses: a global batch of 1 event has no negatives (clr/anomclr/simclr/supcon need >= 2 events)")
    b = len(z)
    g = b * shard.world  # global batch
    keys = torch.cat([shard.gather(z), shard.gather(zp)])  # (2G, D)
    sim = torch.cat([z, zp]) @ keys.T / temperature  # (2B, 2G)
    event = (shard.rank * b + torch.arange(b, device=z.device)).repeat(2)  # global event of each anchor
    anchor = event + torch.arange(2, device=z.device).repeat_interleave(b) * g  # its own column
    cols = torch.arange(2 * g, device=z.device)
    itself = cols == anchor[:, None]
    partner = (cols == event[:, None]) | (cols == event[:, None] + g)
    return sim, itself, partner & ~itself


def _log_negatives(z: torch.Tensor, zp: torch.Tensor, temperature: float, shard: Shard,
                   partner_in_denominator: bool = False) -> torch.Tensor:
    """(2B,) log sum_k exp(s(a, k)/tau) over the global views k other than a and, unless
    `partner_in_denominator` (SimCLR), its partner; for the local anchors a = [z; z']."""
    return _log_denominator(*_similarities(z, zp, temperature, shard), partner_in_denominator)


def _log_denominator(sim: torch.Tensor, itself: torch.Tensor, partner: torch.Tensor,
                     partner_in_denominator: bool) -> torch.Tensor:
    """`_log_negatives` from the similarities and masks of `_similarities`."""
    excluded = itself if partner_in_denominator else itself | partner
    return torch.logsumexp(sim.masked_fill(excluded, float("-inf")), dim=1)


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


def simclr_loss(h: torch.Tensor, h2: torch.Tensor, temperature: float, shard: Shard = LOCAL) -> torch.Tensor:
    """SimCLR's NT-Xent: the positive pair (z, z'), every other view of the global batch (the partner
    too) in the denominator."""
    z, zp = _unit(h, h2)
    return (_log_negatives(z, zp, temperature, shard, partner_in_denominator=True)
            - _positive_logits(z, zp, None, temperature)).mean()


def supcon_loss(h: torch.Tensor, h2: torch.Tensor, labels: torch.Tensor | None, temperature: float,
                shard: Shard = LOCAL) -> torch.Tensor:
    """SupCon (L_out): positives = every other view of the global batch whose event has the anchor's
    label (B,) integer class; the denominator as SimCLR's."""
    if labels is None:
        raise ValueError("losses: supcon needs the background process labels of the batch (a data set with "
                         "`process_label`)")
    z, zp = _unit(h, h2)
    sim, itself, partner = _similarities(z, zp, temperature, shard)
    log_den = _log_denominator(sim, itself, partner, partner_in_denominator=True)
    keys = shard.gather(labels.to(z.device).view(-1, 1).float()).view(-1).repeat(2)  # (2G,) labels of the views
    positive = (labels.to(z.device).float().repeat(2)[:, None] == keys[None, :]) & ~itself
    mean_positive = (sim * positive).sum(1) / positive.sum(1)  # the partner is always one: no division by 0
    return (log_den - mean_positive).mean()


def vicreg_loss(h: torch.Tensor, h2: torch.Tensor, weights: tuple[float, float, float] = VICREG_WEIGHTS,
                shard: Shard = LOCAL) -> torch.Tensor:
    """VICReg: `weights` = (invariance, variance, covariance). The invariance is this worker's mean;
    variance and covariance are statistics of the global batch (gathered), the same on every worker."""
    _unit(h, h2)  # shape check only: VICReg works on the outputs themselves
    if len(h) * shard.world < 2:
        raise ValueError("losses: vicreg's variance needs a global batch of >= 2 events")
    invariance = F.mse_loss(h, h2)
    variance = covariance = h.new_zeros(())
    for x in (shard.gather(h), shard.gather(h2)):
        x = x - x.mean(0)
        variance = variance + F.relu(1 - torch.sqrt(x.var(0) + 1e-4)).mean() / 2
        cov = x.T @ x / (len(x) - 1)
        covariance = covariance + (cov.square().sum() - cov.diagonal().square().sum()) / x.shape[1]
    lam, mu, nu = weights
    return lam * invariance + mu * variance + nu * covariance


# The views a loss compares (`train.make_views` draws them):
EVENT = "event"  # (events, physical views), as the published AnomalyCLR code
ANOMALY = "anomaly"  # (events, physical views, anomaly views)
TWO_VIEWS = "two_views"  # two physical views drawn independently, as SimCLR compares two augmentations


@dataclass(frozen=True)
class Loss:
    """One contrastive loss: `compute(h, h2, h_anom, temperature, shard, labels, vicreg_weights)` on the
    head outputs of its `views` (h_anom None unless ANOMALY); `labels`: it needs the background's process
    labels; `label` and `color` name it in tables and figures."""

    compute: Callable[..., torch.Tensor]
    views: str
    label: str
    color: str
    labels: bool = False


LOSSES: dict[str, Loss] = {
    "clr": Loss(lambda h, h2, _a, t, s, _y, _w: clr_loss(h, h2, t, s), EVENT, "CLR", "#1f77b4"),
    "anomclr": Loss(lambda h, h2, a, t, s, _y, _w: anomclr_loss(h, h2, a, t, s), ANOMALY, "AnomCLR", "#d62728"),
    "anomclr_plus": Loss(lambda h, h2, a, t, s, _y, _w: anomclr_plus_loss(h, h2, a, t, s), ANOMALY, "AnomCLR+",
                         "#2ca02c"),
    # the companion method's (Metzger et al.)
    "simclr": Loss(lambda h, h2, _a, t, s, _y, _w: simclr_loss(h, h2, t, s), TWO_VIEWS, "SimCLR", "#9467bd"),
    "supcon": Loss(lambda h, h2, _a, t, s, y, _w: supcon_loss(h, h2, y, t, s), TWO_VIEWS, "SupCon", "#ff7f0e",
                   labels=True),
    "vicreg": Loss(lambda h, h2, _a, _t, s, _y, w: vicreg_loss(h, h2, w, s), TWO_VIEWS, "VICReg", "#8c564b"),
}


def contrastive_loss(name: str, h, h_phys, h_anom, temperature: float, shard: Shard = LOCAL,
                     labels: torch.Tensor | None = None,
                     vicreg_weights: tuple[float, float, float] = VICREG_WEIGHTS) -> torch.Tensor:
    """The loss `name` of `LOSSES`; `shard` places h in a DDP global batch. `h_phys` is the second view
    (the physical view, or for the two-view losses a second augmented view); `labels` (B,) serve
    supcon, `vicreg_weights` vicreg."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}: expected one of {', '.join(LOSSES)}")
    return LOSSES[name].compute(h, h_phys, h_anom, temperature, shard, labels, vicreg_weights)
