"""Pile-up: minimum-bias interactions overlaid on each hard event, as Delphes' PileUpMerger does.

A pool of Pythia 8 non-diffractive events is generated once per chunk; each hard event receives a
Poisson number of them (mean `DetectorConfig.pileup_mean`), drawn from the pool with replacement, each
rotated by a random azimuth (Delphes reuses its MinBias.pileup file the same way). The overlaid particles
carry a flag, so the detector can keep them out of the leptons and the jets (`DetectorConfig.
jet_pileup_removal`) and put them all into MET.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .detector import Particles
from .processes import Process

MINBIAS = Process("minbias", ("SoftQCD:nonDiffractive = on",), "non-diffractive minimum bias (pile-up pool)")


@dataclass
class PileupPool:
    """Visible particles of `n` minimum-bias events, flat, with per-event offsets."""

    particles: Particles
    starts: np.ndarray
    counts: np.ndarray

    @classmethod
    def generate(cls, pythia, n: int, batch: int = 250) -> "PileupPool":
        """`n` events of `pythia`, an initialised generator of MINBIAS."""
        parts, have = [], 0
        while have < n:
            parts.append(Particles.from_pythia(pythia.nextBatch(min(batch, n - have))))
            have += parts[-1].n_events
        flat = Particles.concatenate(parts)
        counts = np.bincount(flat.evt, minlength=flat.n_events)
        return cls(flat, np.cumsum(counts) - counts, counts)

    def overlay(self, hard: Particles, mean: float, rng: np.random.Generator) -> Particles:
        """`hard` with Poisson(`mean`) pool events added to each event, each rotated in azimuth."""
        n_pu = rng.poisson(mean, hard.n_events)
        pick = rng.integers(0, len(self.counts), n_pu.sum())
        angle = rng.uniform(-np.pi, np.pi, len(pick))
        sizes = self.counts[pick]
        src = np.repeat(self.starts[pick] - np.cumsum(sizes) + sizes, sizes) + np.arange(sizes.sum())
        rot = np.repeat(angle, sizes)
        c, s = np.cos(rot), np.sin(rot)
        p = self.particles
        pu = Particles(np.repeat(np.repeat(np.arange(hard.n_events), n_pu), sizes), p.pdg[src],
                       c * p.px[src] - s * p.py[src], s * p.px[src] + c * p.py[src], p.pz[src], p.e[src],
                       hard.n_events, np.ones(len(src), bool))
        return Particles.concatenate([hard, pu], same_events=True)
