"""Generate one deterministic chunk of accepted events for one process with Pythia 8."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np

from .detector import DetectorConfig, Particles, may_trigger, reconstruct
from .processes import COMMON, Process
from ...errors import ConfigError

PYTHIA_SEED_MAX = 900_000_000


def chunk_seed(seed: int, process: str, chunk: int) -> int:
    """Pythia's seed for (global seed, process, chunk): independent of how chunks map to workers."""
    digest = hashlib.sha256(f"{seed}/{process}/{chunk}".encode()).digest()
    return 1 + int.from_bytes(digest[:8], "little") % (PYTHIA_SEED_MAX - 1)


@dataclass
class ChunkResult:
    """Accepted events of one chunk and what it cost."""

    events: np.ndarray  # (n, 19, 4) float32
    n_generated: int
    seconds: float
    sigma_pb: float = float("nan")  # Pythia's estimate of the generated process's cross section


def make_pythia(process: Process, pythia_seed: int):
    import pythia8mc  # imported here: only generation needs it

    pythia = pythia8mc.Pythia("", False)
    for s in (*COMMON, "Random:setSeed = on", f"Random:seed = {pythia_seed}", *process.settings):
        if not pythia.readString(s):
            raise ConfigError(f"process {process.name}: Pythia rejected setting {s!r}")
    if not pythia.init():
        raise RuntimeError(f"process {process.name}: Pythia initialisation failed")
    return pythia


def generate_chunk(process: Process, seed: int, chunk: int, n_accept: int,
                   detector: DetectorConfig = DetectorConfig(), batch: int = 250,
                   max_generated: int | None = None) -> ChunkResult:
    """Generate events until exactly `n_accept` pass the selection.

    Deterministic in (process, seed, chunk, n_accept, detector, batch). `n_generated` counts events
    up to and including the last accepted one, so efficiencies are exact.
    """
    t0 = time.perf_counter()
    pseed = chunk_seed(seed, process.name, chunk)
    rng = np.random.default_rng(pseed)
    pythia = make_pythia(process, pseed)
    pool = None
    if detector.pileup_mean > 0:
        from .pileup import MINBIAS, PileupPool

        minbias = make_pythia(MINBIAS, chunk_seed(seed, f"{process.name}/pileup", chunk))
        # a small chunk (tests) needs no full pool: 10 events per accepted event keeps reuse low
        pool = PileupPool.generate(minbias, min(detector.pileup_pool, 10 * n_accept), batch)
    kept: list[np.ndarray] = []
    n_kept = n_generated = 0
    limit = max_generated or max(1_000_000, 2000 * n_accept)
    while n_kept < n_accept:
        if n_generated >= limit:
            raise RuntimeError(f"process {process.name}: only {n_kept} of {n_accept} events accepted after "
                               f"{n_generated} generated; the selection efficiency is too low")
        ev = pythia.nextBatch(batch)
        parts = Particles.from_pythia(ev)
        candidates = may_trigger(parts)
        parts = parts.select_events(candidates)
        if pool is not None:
            parts = pool.overlay(parts, detector.pileup_mean, rng)
        rows, passed_candidates = reconstruct(parts, rng, detector)
        passed = np.zeros(len(candidates), bool)
        passed[candidates] = passed_candidates
        need = n_accept - n_kept
        if len(rows) >= need:
            last = np.flatnonzero(passed)[need - 1]
            rows = rows[:need]
            n_generated += int(last) + 1
        else:
            n_generated += len(passed)
        kept.append(rows)
        n_kept += len(rows)
    return ChunkResult(np.concatenate(kept), n_generated, time.perf_counter() - t0,
                       pythia.infoPython().sigmaGen() * 1e9)
