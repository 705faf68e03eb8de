"""Augmentations of ADC2021 events, batched: (B, 19, 4) physical units in, same out.

Every function is pure: an explicit `torch.Generator` (on the events' device) drives the randomness,
outputs are valid events (right class per slot, zero padding at the end of each type, pT-ordered,
wrapped phi, acceptance and thresholds respected). No Python loop over events.

Physical (applied together by `physical`): a common phi rotation, pT-dependent eta/phi smearing,
jet pT smearing; the companion method's object masking and Gaussian pT resampling (cl4ad's
`naive_masking` of whole particles and `gaussian_resampling_pT`, made to keep events valid) compose
with them into the physical view (`TrainConfig.mask_probability`, `pt_resampling`).

Anomalous (one per event, chosen uniformly among the mix by `anomalous`): add objects (`ao`), collinear
split (`cs`), pT/MET shift (`shift`), declared once in `ANOMALIES`: a new anomaly augmentation is one
entry there, and the mixes, the study scripts and the signal-free metrics follow.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..errors import ConfigError
from ..events import layout as L
from ..events.kinematics import jet_pt_resolution, wrap_phi

TYPES = (L.ELECTRON, L.MUON, L.JET)  # the object types (MET aside)
ALL = "all"  # the mix of every anomaly augmentation
# pT/MET shift factors, as the published `shift_met_or_pt`: MET alone x U[0.5, 5) (MET has no threshold),
# object pTs alone or with the MET x U[1, 5) (factors >= 1 keep every threshold and the trigger).
SHIFT_MET_RANGE = (0.5, 5.0)
SHIFT_PT_RANGE = (1.0, 5.0)
PT_MARGIN = 1e-3  # GeV: split parts stay this far above thresholds so float32 rounding cannot cross them


def mixes() -> tuple[str, ...]:
    """The named mixes: each anomaly augmentation of `ANOMALIES` alone, then `all` of them."""
    return (*ANOMALIES, ALL)


def parse_mix(mix: str) -> tuple[str, ...]:
    """'ao', 'cs', 'shift', 'all' or '+'-joined names ('ao+shift') -> the names of `ANOMALIES` in it."""
    names: list[str] = []
    for part in mix.split("+"):
        if part not in mixes():
            raise ConfigError(f"unknown augmentation mix {mix!r}: use {', '.join(mixes())} or '+'-joined names")
        names += [n for n in (tuple(ANOMALIES) if part == ALL else (part,)) if n not in names]
    return tuple(names)


def _rand(x: torch.Tensor, *shape: int, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=x.device, dtype=x.dtype)


def _randn(x: torch.Tensor, *shape: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=generator, device=x.device, dtype=x.dtype)


def _filled(x: torch.Tensor) -> torch.Tensor:
    return x[..., L.CLASS] != L.EMPTY_ID


def _met_vector(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    met, phi = x[:, 0, L.PT], x[:, 0, L.PHI]
    return met * torch.cos(phi), met * torch.sin(phi)


def _set_met(x: torch.Tensor, mx: torch.Tensor, my: torch.Tensor) -> None:
    x[:, 0, L.PT] = torch.hypot(mx, my)
    x[:, 0, L.PHI] = torch.atan2(my, mx)


def canonicalize(x: torch.Tensor) -> torch.Tensor:
    """Clear objects outside their type's acceptance or threshold, then sort each type by pT.

    Empty slots get pT 0 and so sort to the end: padding stays at the end, all-zero.
    """
    x = x.clone()
    pt_min = torch.as_tensor(L.SLOT_PT_MIN, dtype=x.dtype, device=x.device)
    eta_max = torch.as_tensor(L.SLOT_ETA_MAX, dtype=x.dtype, device=x.device)
    ok = _filled(x) & (x[..., L.PT] >= pt_min) & (x[..., L.ETA].abs() <= eta_max)
    ok[:, 0] = True  # MET
    x = torch.where(ok[..., None], x, torch.zeros_like(x))
    for t in TYPES:
        block = x[:, t.slots]
        order = torch.argsort(block[..., L.PT], dim=1, descending=True, stable=True)
        x[:, t.slots] = torch.gather(block, 1, order[..., None].expand_as(block))
    return x


def eta_phi_width(pt: torch.Tensor) -> torch.Tensor:
    """Smearing width sigma(pT) = 0.028 / (1 + exp((pT - 25 GeV) / 0.1 GeV)) (the authors' code)."""
    return 0.028 * torch.sigmoid(-(pt - 25.0) / 0.1)


def passes_trigger(x: torch.Tensor) -> torch.Tensor:
    """(B,) True where an electron or muon has pT above the trigger threshold (canonical events)."""
    return (x[:, L.LEPTONS, L.PT] >= L.TRIGGER_PT).any(1)


def _n_objects(x: torch.Tensor) -> torch.Tensor:
    return _filled(x[:, L.OBJECTS]).sum(1)


def _smear_eta_phi(x: torch.Tensor, which: torch.Tensor, generator: torch.Generator, strength: float = 1.0,
                   keep_all: bool = False) -> torch.Tensor:
    """Smear eta and phi of the objects selected by `which` (B, 19) bool; MET is never smeared.

    Objects pushed out of acceptance are removed (canonical output), except where that would remove
    the event's last trigger lepton, or, with `keep_all`, any object (the anomaly augmentations, whose
    sum-pT and MET bookkeeping must hold): such an event keeps its unsmeared objects.
    """
    y = x.clone()
    which = which.clone()
    which[:, 0] = False
    sigma = strength * eta_phi_width(x[..., L.PT]) * which
    noise = _randn(x, 2, *x.shape[:2], generator=generator)
    y[..., L.ETA] = x[..., L.ETA] + sigma * noise[0]
    y[..., L.PHI] = torch.where(which, wrap_phi(x[..., L.PHI] + sigma * noise[1]), x[..., L.PHI])
    x, y = canonicalize(x), canonicalize(y)
    lost = passes_trigger(x) & ~passes_trigger(y)
    if keep_all:
        lost |= _n_objects(y) < _n_objects(x)
    return torch.where(lost[:, None, None], x, y)


def rotate_phi(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Rotate every object and the MET of each event by one random angle in [-pi, pi)."""
    angle = (2 * _rand(x, x.shape[0], 1, generator=generator) - 1) * math.pi
    y = x.clone()
    y[..., L.PHI] = torch.where(_filled(x), wrap_phi(x[..., L.PHI] + angle), x[..., L.PHI])
    return y


def smear_eta_phi(x: torch.Tensor, generator: torch.Generator, strength: float = 1.0) -> torch.Tensor:
    """pT-dependent eta/phi smearing of all objects; objects leaving the acceptance are removed."""
    return _smear_eta_phi(x, _filled(x), generator, strength)


def smear_jet_pt(x: torch.Tensor, generator: torch.Generator, strength: float = 1.0) -> torch.Tensor:
    """Jet pT += strength * sigma(pT) * N(0, 1), sigma = sqrt(0.052 pT^2 + 1.502 pT) GeV; MET follows.

    Jets smeared below 15 GeV are removed from the list; their (smeared) pT stays in the MET balance.
    """
    y = x.clone()
    jets = y[:, L.JETS]
    pt = jets[..., L.PT]
    is_jet = jets[..., L.CLASS] == L.JET_ID
    new_pt = torch.clamp(pt + strength * jet_pt_resolution(pt) * _randn(x, *pt.shape, generator=generator), min=0.0)
    new_pt = torch.where(is_jet, new_pt, pt)
    dpt = new_pt - pt
    mx, my = _met_vector(y)
    mx = mx - (dpt * torch.cos(jets[..., L.PHI])).sum(1)
    my = my - (dpt * torch.sin(jets[..., L.PHI])).sum(1)
    y[:, L.JETS.start:L.JETS.stop, L.PT] = new_pt
    _set_met(y, mx, my)
    return canonicalize(y)


def physical(x: torch.Tensor, generator: torch.Generator, strength: float = 1.0) -> torch.Tensor:
    """The physical augmentation: phi rotation, then eta/phi smearing, then jet pT smearing."""
    return smear_jet_pt(smear_eta_phi(rotate_phi(x, generator), generator, strength), generator, strength)


def _keep_trigger(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """y, except that an event which lost its last trigger lepton (x canonical) keeps x."""
    lost = passes_trigger(x) & ~passes_trigger(y)
    return torch.where(lost[:, None, None], x, y)


def mask_objects(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Remove each object (not the MET) with probability p, whole objects (cl4ad's masking with
    `mask_full_particle`); the rest of each type moves up; an event that would lose its last trigger
    lepton keeps its objects."""
    if not 0 <= p < 1:
        raise ValueError(f"mask_objects: probability must be in [0, 1), got {p}")
    drop = (_rand(x, *x.shape[:2], generator=generator) < p) & _filled(x)
    drop[:, 0] = False
    return _keep_trigger(x, canonicalize(torch.where(drop[..., None], torch.zeros_like(x), x)))


def resample_pt(x: torch.Tensor, scale: float, generator: torch.Generator) -> torch.Tensor:
    """pT of every object and the MET -> |N(pT, scale * pT)| (cl4ad's Gaussian pT resampling, std =
    pT * std_scale; the modulus keeps a pT a pT); objects that fall below their threshold are removed,
    each type is re-sorted, and an event that would lose its last trigger lepton keeps its pTs."""
    if not scale >= 0:
        raise ValueError(f"resample_pt: scale must be >= 0, got {scale}")
    pt = x[..., L.PT]
    y = x.clone()
    y[..., L.PT] = torch.where(_filled(x), (pt + scale * pt * _randn(x, *pt.shape, generator=generator)).abs(), pt)
    return _keep_trigger(x, canonicalize(y))


def _free_slot_rank(x: torch.Tensor, t: L.ObjectType) -> tuple[torch.Tensor, torch.Tensor]:
    """Per event: number of filled slots of type t (B,), and each slot's index among the free ones (B, n)."""
    filled = _filled(x[:, t.slots])
    n_filled = filled.sum(1)
    free_rank = torch.arange(t.n_slots, device=x.device) - n_filled[:, None]  # >= 0 on free slots
    return n_filled, free_rank


def add_objects(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Add random electrons, muons and jets into free slots; MET recomputed from the vector sum.

    Per event, each type gets between 0 and its free slots (at least one object in all where there is
    room); pT uniform between the type's threshold and the event's highest object pT, eta uniform in the
    acceptance, phi uniform. New objects get the eta/phi smearing; the original objects are untouched.
    """
    y = x.clone()
    b = x.shape[0]
    max_pt = x[:, L.OBJECTS, L.PT].max(1).values
    added = torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device)
    mx, my = _met_vector(x)
    n_free = [t.n_slots - _filled(x[:, t.slots]).sum(1) for t in TYPES]
    counts = [torch.floor(_rand(x, b, generator=generator) * (f + 1)).long() for f in n_free]
    nothing = sum(counts) == 0
    pick = torch.floor(_rand(x, b, generator=generator) * len(TYPES)).long()
    for k, (t, f) in enumerate(zip(TYPES, n_free)):
        # an event that drew no object at all gets one of a randomly chosen type (if it has room)
        counts[k] = torch.where(nothing & (pick == k) & (f > 0), torch.ones_like(counts[k]), counts[k])
    for t, count in zip(TYPES, counts):
        _, free_rank = _free_slot_rank(x, t)
        new = (free_rank >= 0) & (free_rank < count[:, None])
        lo = torch.full_like(max_pt, t.pt_min)
        hi = torch.maximum(max_pt, lo)
        u = _rand(x, 3, b, t.n_slots, generator=generator)
        pt = lo[:, None] + u[0] * (hi - lo)[:, None]
        eta = (2 * u[1] - 1) * t.eta_max
        phi = (2 * u[2] - 1) * math.pi
        block = torch.stack([pt, eta, phi, torch.full_like(pt, t.class_id)], -1)
        y[:, t.slots] = torch.where(new[..., None], block, y[:, t.slots])
        mx = mx - (pt * torch.cos(phi) * new).sum(1)
        my = my - (pt * torch.sin(phi) * new).sum(1)
        added[:, t.slots] = new
    _set_met(y, mx, my)
    return _smear_eta_phi(y, added, generator, keep_all=True)


def collinear_split(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Split objects into two of the same type at the same (eta, phi), keeping sum pT per type and MET.

    Each object that can be split (both parts above the type's threshold; a lepton above the trigger
    threshold keeps its larger part above it) is split with probability 1/2, as far as free slots
    allow, at least one per event where possible. Both parts then get the eta/phi smearing.
    """
    y = x.clone()
    b = x.shape[0]
    touched = torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device)
    for t in TYPES:
        block = x[:, t.slots]
        pt = block[..., L.PT]
        n_filled, free_rank = _free_slot_rank(x, t)
        n_free = t.n_slots - n_filled
        z_min = torch.full_like(pt, 0.5)
        if t is not L.JET:
            trig = pt >= L.TRIGGER_PT  # keep trigger leptons above the trigger threshold
            z_min = torch.where(trig, torch.clamp((L.TRIGGER_PT + PT_MARGIN) / pt.clamp(min=1e-6), min=0.5), z_min)
        z_max = 1 - (t.pt_min + PT_MARGIN) / pt.clamp(min=1e-6)  # margin: no part rounds below threshold
        can = _filled(block) & (z_max > z_min)
        u = _rand(x, 3, b, t.n_slots, generator=generator)
        want = can & (u[0] < 0.5)
        # at least one split per type where possible: the first splittable object if none was drawn
        first = can & (torch.cumsum(can.long(), 1) == 1)
        want = want | (first & ~want.any(1, keepdim=True))
        rank = torch.cumsum(want.long(), 1) - 1
        split = want & (rank < n_free[:, None])
        z = z_min + u[1] * (z_max - z_min)
        keep_pt = torch.where(split, z * pt, pt)
        # scatter the second parts into the free slots, in order
        target = torch.where(split, n_filled[:, None] + rank, torch.full_like(rank, t.n_slots))
        pieces = torch.stack([(1 - z) * pt, block[..., L.ETA], block[..., L.PHI],
                              torch.full_like(pt, t.class_id)], -1) * split[..., None]
        extra = torch.zeros(b, t.n_slots + 1, L.N_FEATURES, dtype=x.dtype, device=x.device)
        extra.scatter_(1, target[..., None].expand(-1, -1, L.N_FEATURES), pieces)
        new_block = block.clone()
        new_block[..., L.PT] = keep_pt
        free = free_rank >= 0
        new_block = torch.where(free[..., None] & (extra[:, :-1, L.CLASS] > 0)[..., None], extra[:, :-1], new_block)
        y[:, t.slots] = new_block
        touched[:, t.slots] = split | (free & (extra[:, :-1, L.CLASS] > 0))
    return _smear_eta_phi(y, touched, generator, keep_all=True)


def shift(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per event one of three modes, chosen uniformly (the published `shift_met_or_pt`): the MET alone
    times U[0.5, 5), the object pTs alone times U[1, 5), or MET and objects times one U[1, 5) factor."""
    b = x.shape[0]
    u = _rand(x, b, generator=generator)
    mode = torch.floor(_rand(x, b, generator=generator) * 3).long()  # 0 MET, 1 objects, 2 both
    (met_lo, met_hi), (pt_lo, pt_hi) = SHIFT_MET_RANGE, SHIFT_PT_RANGE
    factor = torch.where(mode == 0, met_lo + (met_hi - met_lo) * u, pt_lo + (pt_hi - pt_lo) * u)
    scale = torch.ones(x.shape[:2], dtype=x.dtype, device=x.device)
    scale[:, 0] = torch.where(mode != 1, factor, scale[:, 0])
    scale[:, 1:] = torch.where((mode != 0)[:, None], factor[:, None], scale[:, 1:])
    y = x.clone()
    y[..., L.PT] = x[..., L.PT] * scale
    return y


# The anomaly augmentations by their mix name: (events, generator) -> augmented events, valid and selected.
ANOMALIES: dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = {
    "ao": add_objects, "cs": collinear_split, "shift": shift}


def anomalous(x: torch.Tensor, mix: str | tuple[str, ...], generator: torch.Generator) -> torch.Tensor:
    """One anomaly augmentation per event, chosen uniformly among those in `mix` (see `parse_mix`)."""
    names = parse_mix(mix) if isinstance(mix, str) else mix
    choice = torch.floor(_rand(x, x.shape[0], generator=generator) * len(names)).long()
    y = x.clone()
    for k, name in enumerate(names):
        rows = (choice == k).nonzero().squeeze(1)
        if len(rows):
            y[rows] = ANOMALIES[name](x[rows], generator)
    return y
