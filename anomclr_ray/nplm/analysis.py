"""NPLM on one representation: the pools (standardised held-out events), every toy, then the χ² fitted
to the null toys, Z and the detection power per signal and injected fraction."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from ..method.names import NPLM_NULL_DOF, NPLM_POWER, NPLM_Z, nplm_key
from .config import HIGH_DIMENSION, Z_THRESHOLD, NPLMConfig
from .estimator import candidate_sigma
from .toys import Pools, ToyStore, plan, run_toys

@dataclass
class NPLMResult:
    """The toys' t, the χ² fitted to the null toys, and from them Z and the power per signal and fraction."""

    null: np.ndarray
    signal: dict[tuple[str, float], np.ndarray]
    sigma: float
    dimension: int
    dof: float = field(init=False)

    def __post_init__(self):
        from scipy import stats

        self.dof = float(stats.chi2.fit(self.null, floc=0, fscale=1)[0])  # their fit: location 0, scale 1

    def z(self, t: np.ndarray) -> np.ndarray:
        """Asymptotic Z from the fitted χ² (finite far in the tail: Φ^-1 of the log survival function)."""
        from scipy import special, stats

        return -special.ndtri_exp(stats.chi2.logsf(np.asarray(t, dtype=float), self.dof))

    def z_empirical(self, t: np.ndarray) -> np.ndarray:
        """Z from the null toys themselves, p = (1 + #null ≥ t) / (1 + N_null): no larger than
        Φ^-1(1 − 1 / (1 + N_null)), so P(Z > 3) needs the χ² (or > 740 null toys)."""
        from scipy import stats

        p = (1 + (self.null[None, :] >= np.asarray(t, dtype=float)[:, None]).sum(1)) / (1 + len(self.null))
        return stats.norm.isf(p)

    def power(self, signal: str, fraction: float, threshold: float = Z_THRESHOLD) -> float:
        return float((self.z(self.signal[signal, fraction]) > threshold).mean())

    def power_table(self) -> dict[float, dict[str, float]]:
        """{fraction: {signal: P(Z > 3), signal_std: its binomial std over the toys}}: a line of a power
        figure (`figures.plot_lines`)."""
        out: dict[float, dict[str, float]] = {}
        for (sig, frac), t in self.signal.items():
            p = self.power(sig, frac)
            out.setdefault(frac, {}).update({sig: p, f"{sig}_std": math.sqrt(p * (1 - p) / len(t))})
        return out

    def metrics(self) -> dict[str, float]:
        """{nplm_power/<signal>/<fraction>: P(Z > 3), nplm_z/<signal>/<fraction>: median Z, nplm/null_dof}."""
        out = {NPLM_NULL_DOF: self.dof}
        for (sig, frac), t in self.signal.items():
            out[nplm_key(NPLM_POWER, sig, frac)] = self.power(sig, frac)
            out[nplm_key(NPLM_Z, sig, frac)] = float(np.median(self.z(t)))
        return out


def make_pools(background: torch.Tensor, signals: dict[str, torch.Tensor], cfg: NPLMConfig,
               device: torch.device | str = "cpu") -> Pools:
    """Pools of one representation: standardised with the background pool's mean and std (the reference
    is background), columns constant there dropped, float64 on `device`, and σ from the background."""
    background = background.detach().double().flatten(1).to(device)
    mean, std = background.mean(0), background.std(0)
    varies = std > 1e-12 * std.max().clamp_min(1e-300)
    def standardise(x: torch.Tensor) -> torch.Tensor:
        return ((x.detach().double().flatten(1).to(device) - mean) / std.clamp_min(1e-300))[:, varies]

    dim = int(varies.sum())
    if dim > HIGH_DIMENSION:
        warnings.warn(f"NPLM on {dim}-dimensional inputs: a Gaussian-kernel test loses power as the dimension "
                      f"grows (Metzger et al. use 4-dimensional embeddings); read its power with that in mind",
                      stacklevel=2)
    bkg = standardise(background)
    return Pools(bkg, {s: standardise(x) for s, x in signals.items()}, candidate_sigma(bkg.cpu(), cfg.sigma_percentile))


def nplm_test(background: torch.Tensor, signals: dict[str, torch.Tensor], cfg: NPLMConfig,
              store: ToyStore | None = None, workers: int = 0, progress: bool = False,
              device: torch.device | str = "cpu") -> NPLMResult:
    """NPLM on one representation: `background` (N, D) held-out background events (reference and data
    background), `signals` {name: (N_s, D)}; every toy of `plan`, then the analysis."""
    cfg.check_pools(len(background), min((len(x) for x in signals.values()), default=None))
    pools = make_pools(background, signals, cfg, device)
    toys = plan(cfg, signals)
    t = run_toys(pools, cfg, toys, store, workers, progress)
    null = np.array([t[toy.id] for toy in toys if toy.signal is None])
    by_signal: dict[tuple[str, float], list[float]] = {}
    for toy in toys:
        if toy.signal is not None:
            by_signal.setdefault((toy.signal, toy.fraction), []).append(t[toy.id])
    return NPLMResult(null, {k: np.array(v) for k, v in by_signal.items()}, pools.sigma, pools.background.shape[1])
