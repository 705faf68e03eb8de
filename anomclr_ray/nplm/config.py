"""NPLM's settings: the test's sizes and estimator (`NPLMConfig`), what `anomclr nplm` runs (`NPLMJob`),
and the constants the package shares."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..configs import to_plain
from ..errors import ConfigError
from ..events.dataset import REPRODUCTION_SPLIT, DataConfig

HIGH_DIMENSION = 16  # above this the kernel test degrades (Metzger et al. work at 4): warned
SIGMA_SAMPLE = 2000  # background events whose pairwise distances give σ (theirs: the first 2000)
POISSON_MARGIN = 6.0  # pools must hold N̄ + 6 √N̄ events: a draw above that is a 6σ fluctuation
Z_THRESHOLD = 3.0  # power = P(Z > 3)
POWER_RANGE = (-0.03, 1.03)  # the y range of power figures: a probability, whatever the points


@dataclass(frozen=True)
class NPLMConfig:
    """NPLM's sizes and estimator (docs/nplm.md; theirs: N_R = 1e6, N_B̄ = 1e5, M = 1000, λ = 1e-6 on a GPU;
    scaled down here to fit the shipped 200k-event background)."""

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
            raise ConfigError(f"NPLMConfig.fractions must be in [0, 1), got {self.fractions}")
        if self.toys < 1 or self.null_toys < 10:
            raise ConfigError(f"NPLMConfig: toys must be >= 1 and null_toys >= 10 (a χ² is fitted to them), got "
                             f"toys={self.toys}, null_toys={self.null_toys}")
        if self.n_reference < 1 or self.n_background < 1 or self.centres < 1 or self.newton_steps < 1:
            raise ConfigError("NPLMConfig: n_reference, n_background, centres and newton_steps must be >= 1")
        if self.penalty <= 0 or not 0 < self.sigma_percentile < 100:
            raise ConfigError(f"NPLMConfig: penalty must be > 0 and sigma_percentile in (0, 100), got "
                             f"{self.penalty}, {self.sigma_percentile}")

    @property
    def toy_settings(self) -> dict:
        """What a toy's t depends on besides its id: every setting but which toys run (`fractions`, `toys`,
        `null_toys`). A toy store keyed by it is reused by a run with more fractions or toys."""
        return {k: v for k, v in to_plain(self).items() if k not in ("fractions", "toys", "null_toys")}

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
            raise ConfigError(f"NPLM: {background_field} = {n_background} held-out background events, but N_R + N̄_B "
                             f"+ 6√N̄_B = {need_b} are needed (n_reference {self.n_reference}, n_background "
                             f"{self.n_background}): give more events or smaller NPLM sizes")
        if n_signal is not None and n_signal < need_s:
            raise ConfigError(f"NPLM: {signal_field} = {n_signal} signal events per signal, but the largest injection "
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
