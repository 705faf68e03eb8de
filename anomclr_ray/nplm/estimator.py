"""NPLM's estimator: a Gaussian-kernel logistic regression on Nyström centres (their LogisticFalkon with
a weighted cross entropy, in torch), and the likelihood-ratio statistic t of a fit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .config import SIGMA_SAMPLE

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
