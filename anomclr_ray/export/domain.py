"""The validity domain of a scorer: how the events it was trained on were *defined*, not how typical they
are. An event with more leptons or more MET than the background ever had is an anomaly inside the
domain; an event whose objects the training events could not contain (softer than their thresholds,
beyond their |eta| acceptance, above the beam energy: another unit) or without the trigger lepton they
all have is outside it, and its score means nothing.

The boundaries are read off the training events (per object type the lowest pT and the largest |eta|,
the lowest leading-lepton pT: the trigger) and recorded with the layout, the units and the data's
provenance; `check` names, per event, the first boundary it crosses. Every training event satisfies the
layout's declared definitions (`layout.ObjectType`, `TRIGGER_PT`: the reader refuses events that do
not), so those are the boundaries, unless the training events show a tighter definition beyond doubt:
an extreme more than `AGREEMENT` inside the declared one among at least `TIGHTER_MIN_OBJECTS` objects
(a set made with harder jets, say). A small sample's extremes alone (a few hundred events rarely hold a
soft lepton) do not narrow the domain; they are recorded beside it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..events import layout as L

BEAM_ENERGY = 6500.0  # GeV: at sqrt(s) = 13 TeV no object can carry more pT; a file in MeV crosses it
MARGIN = 1e-3  # relative slack on the thresholds read off the training events (float32 rounding)
AGREEMENT = 0.25  # an extreme within this fraction of the declared definition is that definition
TIGHTER_MIN_OBJECTS = 1000  # objects of a type needed before their extremes may narrow the definition
LEPTON_TYPES = (L.ELECTRON, L.MUON)

# What `check` says of each event: 0 inside, else the first boundary crossed (in this order)
BOUNDARIES = ("inside", "pT above the beam energy (units: GeV expected)",
              *(f"{t.name} pT below the training threshold" for t in L.OBJECT_TYPES[1:]),
              *(f"{t.name} |eta| beyond the training acceptance" for t in L.OBJECT_TYPES[1:]),
              "no trigger lepton (electron or muon above the training trigger pT)")


@dataclass(frozen=True)
class Domain:
    """Per object type (electron, muon, jet) the lowest pT and the largest |eta| seen in training, the
    lowest pT of an event's leading lepton (the trigger), and what the events were (layout, units,
    provenance)."""

    pt_min: dict[str, float]
    eta_max: dict[str, float]
    trigger_pt: float
    events: int
    seen: dict[str, float] = field(default_factory=dict)  # the training events' own extremes, for the record
    units: str = "GeV"
    layout: str = "CMS ADC2021: (19, 4) per event; slot 0 MET, 1-4 electrons, 5-8 muons, 9-18 jets; (pT, eta, phi, class)"
    provenance: dict = field(default_factory=dict)

    @classmethod
    def of(cls, events: np.ndarray, provenance: dict | None = None) -> Domain:
        """The domain of training events (N, 19, 4) in GeV."""
        pt, eta, cls_ = events[..., L.PT], np.abs(events[..., L.ETA]), events[..., L.CLASS]
        pt_min, eta_max, seen = {}, {}, {}
        for t in L.OBJECT_TYPES[1:]:
            filled = cls_[:, t.slots] != L.EMPTY_ID
            n = int(filled.sum())
            seen[f"{t.name}_pt_min"] = float(pt[:, t.slots][filled].min()) if n else t.pt_min
            seen[f"{t.name}_abs_eta_max"] = float(eta[:, t.slots][filled].max()) if n else t.eta_max
            pt_min[t.name] = _defined(seen[f"{t.name}_pt_min"], t.pt_min, n, above=True)
            eta_max[t.name] = _defined(seen[f"{t.name}_abs_eta_max"], t.eta_max, n, above=False)
        seen["leading_lepton_pt_min"] = float(_leading_lepton(events).min())
        trigger = _defined(seen["leading_lepton_pt_min"], L.TRIGGER_PT, len(events), above=True)
        return cls(pt_min, eta_max, trigger, len(events), seen, provenance=provenance or {})

    def check(self, events: np.ndarray) -> np.ndarray:
        """(N,) int8: 0 for an event inside the domain, else the index in `BOUNDARIES` of the first
        boundary it crosses."""
        pt, eta, cls_ = events[..., L.PT], np.abs(events[..., L.ETA]), events[..., L.CLASS]
        crossed = [(pt > BEAM_ENERGY).any(axis=1)]
        for t in L.OBJECT_TYPES[1:]:
            filled = cls_[:, t.slots] != L.EMPTY_ID
            crossed.append((filled & (pt[:, t.slots] < self.pt_min[t.name] * (1 - MARGIN))).any(axis=1))
        for t in L.OBJECT_TYPES[1:]:
            filled = cls_[:, t.slots] != L.EMPTY_ID
            crossed.append((filled & (eta[:, t.slots] > self.eta_max[t.name] * (1 + MARGIN))).any(axis=1))
        crossed.append(_leading_lepton(events) < self.trigger_pt * (1 - MARGIN))
        crossed = np.stack(crossed, axis=1)
        return np.where(crossed.any(axis=1), crossed.argmax(axis=1) + 1, 0).astype(np.int8)

    def describe(self) -> list[str]:
        """The domain in words, a line each."""
        return [f"{t.name}s: pT >= {self.pt_min[t.name]:.2f} GeV, |eta| <= {self.eta_max[t.name]:.2f}"
                for t in L.OBJECT_TYPES[1:]] + [
            f"trigger: an electron or muon with pT >= {self.trigger_pt:.2f} GeV in every event",
            f"no object above the beam energy ({BEAM_ENERGY:.0f} GeV); units {self.units}",
            f"layout: {self.layout}", f"read off {self.events} training events; their own extremes: "
            + ", ".join(f"{k} {v:.2f}" for k, v in self.seen.items())]


def _defined(seen: float, declared: float, n: int, above: bool) -> float:
    """The declared definition, unless `n` >= `TIGHTER_MIN_OBJECTS` objects show a tighter one (a
    threshold seen more than `AGREEMENT` above it, an acceptance that much below it): then what was seen."""
    tighter = seen > declared * (1 + AGREEMENT) if above else seen < declared * (1 - AGREEMENT)
    return seen if tighter and n >= TIGHTER_MIN_OBJECTS else declared


def _leading_lepton(events: np.ndarray) -> np.ndarray:
    """(N,) the highest pT of an electron or muon per event (0 without one)."""
    return np.max([events[:, t.slots, L.PT].max(axis=1) for t in LEPTON_TYPES], axis=0)


def data_provenance(data_dir: str | Path) -> dict:
    """What the training events were: the data directory's provenance.json (generator, its config hash,
    the detector response and calibration it records, the files' sha256), else the background file's
    sha256 and the attributes it carries (the published files carry none)."""
    data_dir = Path(data_dir)
    if (prov := data_dir / "provenance.json").exists():
        p = json.loads(prov.read_text())
        physics = p.get("physics", {})
        return {"source": str(data_dir), "generator": p.get("generator"), "config_hash": p.get("config_hash"),
                "detector": physics.get("config", {}).get("detector"), "calibration": physics.get("calibration"),
                "sha256": p.get("checksums", {})}
    path = data_dir / L.FILE_NAMES[L.BACKGROUND]
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"source": str(data_dir), "generator": "unknown (no provenance.json: e.g. the published ADC2021 files)",
            "sha256": {path.name: digest.hexdigest()}}
