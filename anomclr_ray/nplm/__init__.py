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

from .analysis import NPLMResult, make_pools, nplm_test
from .config import HIGH_DIMENSION, POISSON_MARGIN, POWER_RANGE, SIGMA_SAMPLE, Z_THRESHOLD, NPLMConfig, NPLMJob
from .estimator import KernelModel, candidate_sigma, fit, gaussian_kernel, likelihood_ratio
from .toys import NULL, Pools, Toy, ToyStore, draw, plan, run_toy, run_toys, toy_rng

__all__ = ["HIGH_DIMENSION", "NULL", "POISSON_MARGIN", "POWER_RANGE", "SIGMA_SAMPLE", "Z_THRESHOLD", "KernelModel",
           "NPLMConfig", "NPLMJob", "NPLMResult", "Pools", "Toy", "ToyStore", "candidate_sigma", "draw", "fit",
           "gaussian_kernel", "likelihood_ratio", "make_pools", "nplm_test", "plan", "run_toy", "run_toys", "toy_rng"]
