"""The preprocessing shared by contrastive training and the raw-data autoencoder baseline.

pT and MET are divided by the mean object pT of the background training set, eta by 4 (jets reach
|eta| = 4), phi by pi; empty slots stay exactly zero; a one-hot object type is appended. The scale
is fitted once and saved in every checkpoint (`configs.to_plain` / `from_plain`), like weaver's data config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from . import layout as L
from ..errors import ConfigError, DataError

ETA_SCALE = 4.0
PHI_SCALE = math.pi
N_KINEMATIC = 3  # the first inputs of a slot: scaled (pT, eta, phi)
N_INPUT_FEATURES = N_KINEMATIC + L.N_TYPES  # scaled (pT, eta, phi) + one-hot (MET, e, mu, jet)


@dataclass(frozen=True)
class Preprocessor:
    """Fitted scales. `__call__` maps (B, 19, 4) physical events to (B, 19, 7) network inputs."""

    pt_scale: float
    eta_scale: float = ETA_SCALE
    phi_scale: float = PHI_SCALE

    def __post_init__(self):
        if not (self.pt_scale > 0 and math.isfinite(self.pt_scale)):
            raise ConfigError(f"Preprocessor: pt_scale must be a positive finite number, got {self.pt_scale}")

    @classmethod
    def fit(cls, background: np.ndarray | torch.Tensor) -> "Preprocessor":
        """Mean pT of the non-empty objects (electrons, muons, jets) of background events (N, 19, 4)."""
        x = torch.as_tensor(background)
        pt = x[:, L.OBJECTS, L.PT]
        filled = x[:, L.OBJECTS, L.CLASS] != L.EMPTY_ID
        if not filled.any():
            raise DataError("Preprocessor.fit: the background events hold no objects")
        return cls(pt_scale=float(pt[filled].double().mean()))

    def __call__(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(B, 19, 4) physical -> (B, 19, 7) float32 on x's device: pT/s, eta/4, phi/pi, one-hot type."""
        x = torch.as_tensor(x, dtype=torch.float32)
        cls = x[..., L.CLASS].long()
        one_hot = torch.nn.functional.one_hot(cls, L.N_TYPES + 1)[..., 1:].to(x.dtype)  # class 0 -> all zeros
        scale = x.new_tensor([self.pt_scale, self.eta_scale, self.phi_scale])
        return torch.cat([x[..., :L.CLASS] / scale, one_hot], dim=-1)
