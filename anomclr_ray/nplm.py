"""The signal-agnostic test: NPLM (New Physics Learning Machine; D'Agnolo, Wulzer, Grosso, Letizia et al.)
on any representation the platform makes, as Metzger et al. use it (arXiv:2502.15926; docs/nplm.md).

A toy is one pseudo-experiment: a reference sample of N_R background events and a data sample of
N_B ~ Poisson(N_B̄) background plus N_S ~ Poisson(f N_B̄) signal events. A kernel logistic regression
between them learns f(x) ≈ log[n_data(x) / n_ref(x)] and gives the extended likelihood-ratio statistic

    t = 2 [ Σ_data f(x) − w Σ_ref (e^f(x) − 1) ],   w = N_B̄ / N_R.

Null toys (f = 0) give t's distribution without signal; a χ² fitted to them turns a signal toy's t into
Z, and the detection power is P(Z > 3) over the signal toys.

The estimator is the one of their code (Falkon's `LogisticFalkon` with a `WeightedCrossEntropyLoss`),
written here in torch because Falkon is not on the package registry: a Gaussian kernel
exp(−|x − y|² / 2σ²) on M Nyström centres drawn uniformly from the toy's events, the loss
(1/n) Σ [y log(1 + e^−f) + w (1 − y) log(1 + e^f)] (y = 1 data, 0 reference) plus (λ/2) α^T K_MM α,
σ = the 90th percentile of the pairwise distances of (standardised) background events, rounded to 0.1
as theirs. With one penalty in its list, LogisticFalkon makes one Newton step from f = 0, solved to
convergence: `newton_steps = 1` is that; more steps (damped) iterate to the penalised maximum-likelihood
fit. The Newton system is solved exactly in the Nyström basis K_MM = U Λ U^T (eigenvalues below
M · eps · Λ_max dropped, the role of Falkon's jitter), where the penalty is (λ/2) |β|² with α = U Λ^-½ β.
"""

from __future__ import annotations

import json
import math
import warnings
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .events.dataset import REPRODUCTION_SPLIT, DataConfig
from .names import NPLM_NULL_DOF, NPLM_POWER, NPLM_Z, nplm_key

HIGH_DIMENSION = 16  # above this the kernel test degrades (Metzger et al. work at 4): warned
SIGMA_SAMPLE = 2000  # background events whose pairwise distances give σ (theirs: the first 2000)
POISSON_MARGIN = 6.0  # pools must hold N̄ + 6 √N̄ events: a draw above that is a 6σ fluctuation
Z_THRESHOLD = 3.0  # power = P(Z > 3)
POWER_RANGE = (-0.03, 1.03)  # the y range of power figures: a probability, whatever the points


@dataclass(frozen=True)
class NPLMConfig:
    """NPLM's sizes and estimator (docs/nplm.md; theirs: N_R = 1e6, N_B̄ = 1e5, M = 1000, λ = 1e-6 on a GPU;
    scaled down here to fit the shipped 100k-event background)."""

    fractions: tuple[float, ...] = (0.001, 0.005, 0.01)  # signal injections f: N_S ~ Poisson(f N_B̄)
    toys: int = 100  # signal toys per signal and fraction
    null_toys: int = 100  # toys without signal: t's distribution under the background hypothesis
    n_reference: int = 30_000  # N_R
    n_background: int = 3_000  # N_B̄: expected background events in the data
    centres: int = 1000  # M Nyström centres
    penalty: float = 1e-6  # λ
    newton_steps: int = 1  # 1: their LogisticFalkon; more: damped Newton towards the converged fit
    sigma_percentile: float = 90.0
    seed: int = 0

    def __post_init__(self):
        if not self.fractions or any(not 0 <= f < 1 for f in self.fractions):
            raise ValueError(f"NPLMConfig.fractions must be in [0, 1), got {self.fractions}")
        if self.toys < 1 or self.null_toys < 10:
            raise ValueError(f"NPLMConfig: toys must be >= 1 and null_toys >= 10 (a χ² is fitted to them), got "
                             f"toys={self.toys}, null_toys={self.null_toys}")
        if self.n_reference < 1 or self.n_background < 1 or self.centres < 1 or self.newton_steps < 1:
            raise ValueError("NPLMConfig: n_reference, n_background, centres and newton_steps must be >= 1")
        if self.penalty <= 0 or not 0 < self.sigma_percentile < 100:
            raise ValueError(f"NPLMConfig: penalty must be > 0 and sigma_percentile in (0, 100), got "
                             f"{self.penalty}, {self.sigma_percentile}")

    @property
    def weight(self) -> float:
        """w = N_B̄ / N_R: the reference weight that makes it predict N_B̄ events."""
        return self.n_background / self.n_reference

    def pools_needed(self) -> tuple[int, int]:
        """(background, signal) events the pools must hold: N_R plus a 6σ Poisson draw of N_B̄, and a 6σ draw
        of the largest injection."""
        def upper(mean: float) -> int:
            return math.ceil(mean + POISSON_MARGIN * math.sqrt(mean)) + (1 if mean else 0)

        return self.n_reference + upper(self.n_background), upper(max(self.fractions) * self.n_background)

    def check_pools(self, n_background: int, n_signal: int | None, background_field: str = "background",
                    signal_field: str = "signal") -> None:
        """Fails before any toy when the held-out pools are too small for N_R, N_B̄ and the injections
        (`n_signal`: the smallest signal pool, None without signals)."""
        need_b, need_s = self.pools_needed()
        if n_background < need_b:
            raise ValueError(f"NPLM: {background_field} = {n_background} held-out background events, but N_R + N̄_B "
                             f"+ 6√N̄_B = {need_b} are needed (n_reference {self.n_reference}, n_background "
                             f"{self.n_background}): give more events or smaller NPLM sizes")
        if n_signal is not None and n_signal < need_s:
            raise ValueError(f"NPLM: {signal_field} = {n_signal} signal events per signal, but the largest injection "
                             f"({max(self.fractions)} x {self.n_background}) needs {need_s}")


@dataclass(frozen=True)
class NPLMJob:
    """What `anomclr nplm` runs (its config.yaml): the events (the toys' pools are the test split's
    background and signals; raw inputs, the 57 kinematic features as Metzger et al.'s, are preprocessed
    as the first checkpoint's, else as fitted on the training events) and NPLM.
    The data default is the reproduction size's split, so a checkpoint of that size sees held-out events."""

    data: DataConfig = field(default_factory=lambda: DataConfig(**REPRODUCTION_SPLIT))
    nplm: NPLMConfig = field(default_factory=NPLMConfig)

    def __post_init__(self):
        self.nplm.check_pools(self.data.n_test, self.data.n_test_signal, "data.n_test", "data.n_test_signal")


# ---------------------------------------------------------------------------------------------- estimator

def gaussian_kernel(a: torch.Tensor, b: torch.Tensor, sigma: float) -> torch.Tensor:
    """exp(−|a_i − b_j|² / 2σ²), (N, M) for a (N, D) and b (M, D)."""
    return torch.exp(-torch.cdist(a, b).square() / (2 * sigma**2))


def candidate_sigma(x: torch.Tensor, percentile: float = 90.0) -> float:
    """The kernel width: `percentile` of the pairwise distances of the first SIGMA_SAMPLE rows of x
    (standardised background), rounded to 0.1 as their `candidate_sigma`."""
    sample = x[:SIGMA_SAMPLE]
    d = torch.pdist(sample.double())
    return max(0.1, round(float(np.percentile(d.numpy(), percentile)), 1))


@dataclass
class KernelModel:
    """f(x) = Σ_j α_j k(x, c_j): the fitted log density ratio."""

    centres: torch.Tensor  # (M, D)
    alpha: torch.Tensor  # (M,)
    sigma: float

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return gaussian_kernel(x.to(self.centres), self.centres, self.sigma) @ self.alpha


def _objective(f: torch.Tensor, is_data: torch.Tensor, weight: float, beta: torch.Tensor, penalty: float) -> float:
    loss = torch.where(is_data, torch.nn.functional.softplus(-f), weight * torch.nn.functional.softplus(f))
    return float(loss.mean() + 0.5 * penalty * beta.square().sum())


def fit(x: torch.Tensor, is_data: torch.Tensor, weight: float, sigma: float, centres: int, penalty: float,
        newton_steps: int, generator: torch.Generator) -> tuple[KernelModel, torch.Tensor]:
    """Kernel logistic regression of data (is_data) against the reference weighted by `weight`: (the model,
    f on the n = len(x) training events). x (n, D) float64."""
    n = len(x)
    idx = torch.randperm(n, generator=generator)[:centres].to(x.device)
    k_nm = gaussian_kernel(x, x[idx], sigma)  # (n, M)
    evals, evecs = torch.linalg.eigh(k_nm[idx])
    keep = evals > evals.max() * len(idx) * torch.finfo(x.dtype).eps
    basis = evecs[:, keep] / evals[keep].sqrt()  # α = basis @ β
    phi = k_nm @ basis  # (n, r): f = phi @ β, |β|² = α^T K_MM α
    beta = torch.zeros(phi.shape[1], dtype=x.dtype, device=x.device)
    eye = torch.eye(phi.shape[1], dtype=x.dtype, device=x.device)
    f = torch.zeros(n, dtype=x.dtype, device=x.device)
    for step in range(newton_steps):
        s = torch.sigmoid(f)
        grad_f = torch.where(is_data, s - 1, weight * s)  # dℓ/df
        hess_f = torch.where(is_data, 1.0, weight) * s * (1 - s)  # d²ℓ/df²
        grad = phi.T @ grad_f / n + penalty * beta
        hess = (phi.T * hess_f) @ phi / n + penalty * eye
        delta = torch.cholesky_solve(grad[:, None], torch.linalg.cholesky(hess))[:, 0]
        rate, trial = 1.0, beta - delta
        trial_f = phi @ trial
        if step > 0:  # their one step is the full Newton step from f = 0; beyond it, halve the step until
            before = _objective(f, is_data, weight, beta, penalty)  # the objective does not rise
            while rate > 1e-4 and _objective(trial_f, is_data, weight, trial, penalty) > before:
                rate /= 2
                trial = beta - rate * delta
                trial_f = phi @ trial
        beta, f = trial, trial_f
        if step > 0 and float(grad @ delta) < 1e-14:  # the Newton decrement: converged
            break
    return KernelModel(x[idx], basis @ beta, sigma), f


def likelihood_ratio(f: torch.Tensor, is_data: torch.Tensor, weight: float) -> float:
    """t = 2 [Σ_data f − w Σ_ref (e^f − 1)] (their `compute_t`)."""
    return float(2 * (f[is_data].sum() - weight * torch.expm1(f[~is_data]).sum()))


# --------------------------------------------------------------------------------------------------- toys

NULL = "null"


@dataclass(frozen=True)
class Toy:
    """One pseudo-experiment: `signal` None for a null toy."""

    signal: str | None
    fraction: float
    index: int

    @property
    def id(self) -> str:
        """"null/0007", "ato4l/0.005/0007": its key in a toy store and the source of its seed."""
        return f"{NULL}/{self.index:04d}" if self.signal is None else f"{self.signal}/{self.fraction:g}/{self.index:04d}"


def plan(cfg: NPLMConfig, signals: Iterable[str]) -> list[Toy]:
    """The null toys, then `cfg.toys` per signal and fraction."""
    return [Toy(None, 0.0, i) for i in range(cfg.null_toys)] + [
        Toy(s, f, i) for s in signals for f in cfg.fractions for i in range(cfg.toys)]


@dataclass
class Pools:
    """Held-out events a toy draws from, standardised (float64, (N, D)): the background (reference and data
    background are disjoint within a toy) and each signal."""

    background: torch.Tensor
    signals: dict[str, torch.Tensor]
    sigma: float


def toy_rng(cfg: NPLMConfig, toy: Toy) -> np.random.Generator:
    """A toy's own random stream: from the config's seed and the toy's id only, so a toy gives the same
    draw wherever and whenever it runs."""
    return np.random.default_rng([cfg.seed, zlib.crc32(toy.id.encode())])


def draw(pools: Pools, cfg: NPLMConfig, toy: Toy) -> tuple[torch.Tensor, torch.Tensor, np.random.Generator]:
    """The toy's events (reference first, then data) and is_data; the generator, for its Nyström centres."""
    rng = toy_rng(cfg, toy)
    n_b = int(rng.poisson(cfg.n_background))
    n_s = int(rng.poisson(toy.fraction * cfg.n_background)) if toy.signal is not None else 0
    bkg = pools.background
    if cfg.n_reference + n_b > len(bkg):
        raise ValueError(f"NPLM toy {toy.id}: drew {n_b} background events, the pool holds {len(bkg)} for N_R + N_B")
    picked = torch.as_tensor(rng.permutation(len(bkg))[: cfg.n_reference + n_b], device=bkg.device)
    parts = [bkg[picked]]
    if n_s:
        sig = pools.signals[toy.signal]
        if n_s > len(sig):
            raise ValueError(f"NPLM toy {toy.id}: drew {n_s} signal events, the {toy.signal} pool holds {len(sig)}")
        parts.append(sig[torch.as_tensor(rng.choice(len(sig), n_s, replace=False), device=sig.device)])
    x = torch.cat(parts)
    is_data = torch.arange(len(x), device=x.device) >= cfg.n_reference
    return x, is_data, rng


def run_toy(pools: Pools, cfg: NPLMConfig, toy: Toy) -> float:
    """Draw, fit, and return t."""
    x, is_data, rng = draw(pools, cfg, toy)
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    _, f = fit(x, is_data, cfg.weight, pools.sigma, cfg.centres, cfg.penalty, cfg.newton_steps, generator)
    return likelihood_ratio(f, is_data, cfg.weight)


class ToyStore:
    """Finished toys, one JSON line each ({"toy": id, "t": value}) appended as they finish, after a first
    line with what they were run with (`key`: the config and the input): a run that is killed and started
    again skips them; a store of other settings is refused. A torn last line (killed mid-write) is ignored."""

    def __init__(self, path: str | Path | None, key: dict | None = None):
        self.path = None if path is None else Path(path)
        self.done: dict[str, float] = {}
        if self.path is None:
            return
        key = json.loads(json.dumps(key or {}))  # as it reads back
        if not self.path.exists() or not self.path.read_text().strip():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps({"key": key}) + "\n")
            return
        text = self.path.read_text()
        if not text.endswith("\n"):  # a torn last line: end it, so that the next record starts on its own
            with self.path.open("a") as fh:
                fh.write("\n")
        first, *lines = text.splitlines()
        if json.loads(first).get("key") != key:
            raise ValueError(f"{self.path}: its toys were run with other settings ({first}); write to another "
                             f"folder or remove it")
        for line in lines:
            try:
                record = json.loads(line)
                self.done[record["toy"]] = float(record["t"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue

    def add(self, toy: Toy, t: float) -> None:
        self.done[toy.id] = t
        if self.path is not None:
            with self.path.open("a") as fh:
                fh.write(json.dumps({"toy": toy.id, "t": t}) + "\n")


def run_toys(pools: Pools, cfg: NPLMConfig, toys: list[Toy], store: ToyStore | None = None, workers: int = 0,
             progress: bool = False, desc: str = "nplm") -> dict[str, float]:
    """t of every toy ({toy id: t}), skipping those `store` holds and adding each as it finishes.
    `workers` = 0: in this process, on the pools' device (a study's trial, which already holds its CPU;
    a GPU); else as Ray tasks on CPUs, at most `workers` at once, one CPU each."""
    store = store or ToyStore(None)
    todo = [toy for toy in toys if toy.id not in store.done]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(toys), initial=len(toys) - len(todo), desc=desc, unit="toy")
    try:
        if workers == 0:
            for toy in todo:
                store.add(toy, run_toy(pools, cfg, toy))
                bar and bar.update()
        else:
            _run_ray(pools, cfg, todo, store, workers, bar)
    finally:
        bar and bar.close()
    return {toy.id: store.done[toy.id] for toy in toys}


def _run_ray(pools: Pools, cfg: NPLMConfig, todo: list[Toy], store: ToyStore, workers: int, bar) -> None:
    import ray

    task = ray.remote(num_cpus=1)(run_toy)
    shared = ray.put(Pools(pools.background.cpu(), {s: x.cpu() for s, x in pools.signals.items()}, pools.sigma))
    pending: dict = {}
    queue = list(todo)
    while queue or pending:
        while queue and len(pending) < workers:
            toy = queue.pop(0)
            pending[task.remote(shared, cfg, toy)] = toy
        (ready,), _ = ray.wait(list(pending), num_returns=1)
        store.add(pending.pop(ready), ray.get(ready))
        bar and bar.update()


# ------------------------------------------------------------------------------------------------ analysis

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
