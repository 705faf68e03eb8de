"""From inputs to per-signal metrics: fit the autoencoder on background, score the test sets.

Inputs are either encoder representations or, for AE-Raw, preprocessed raw events flattened. Several
AE seeds give mean and std of every metric (the paper's error bars combine CLR and AE seeds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .events.preprocess import Preprocessor
from .metrics import Roc, roc, signal_metrics
from .score import ScoreConfig, fit_autoencoder


@dataclass
class Evaluation:
    """metrics[signal][name] = values over AE seeds; curves[signal] = ROC of the first seed."""

    metrics: dict[str, dict[str, list[float]]]
    curves: dict[str, Roc]

    def summary(self) -> dict[str, dict[str, float]]:
        """{signal: {name: mean, name_std: std}}."""
        out = {}
        for sig, m in self.metrics.items():
            out[sig] = {}
            for k, v in m.items():
                out[sig][k] = float(np.mean(v))
                out[sig][f"{k}_std"] = float(np.std(v))
        return out

    def flat_metrics(self) -> dict[str, float]:
        """MLflow / Tune metrics: `auc/<signal>`, `auc_std/<signal>` (over AE seeds), the same for `si`
        and `eb_at_es`, and `auc/mean`, `si/mean` over the signals."""
        out: dict[str, float] = {}
        for sig, m in self.summary().items():
            for name in ("auc", "si", "eb_at_es"):
                out[f"{name}/{sig}"] = m[name]
                out[f"{name}_std/{sig}"] = m[f"{name}_std"]
        for name in ("auc", "si"):
            out[f"{name}/mean"] = float(np.mean([out[f"{name}/{s}"] for s in self.metrics]))
        return out


def raw_inputs(pre: Preprocessor, events: np.ndarray) -> torch.Tensor:
    """AE-Raw inputs: the shared preprocessing, flattened to (N, 19 * 7)."""
    return pre(events).flatten(1)


def evaluate(train: torch.Tensor, test_background: torch.Tensor, test_signals: dict[str, torch.Tensor],
             cfg: ScoreConfig, seeds: tuple[int, ...] = (0,), eps_s: float = 0.3) -> Evaluation:
    """AE per seed on `train` (background inputs), metrics per signal on the test inputs."""
    metrics: dict[str, dict[str, list[float]]] = {s: {} for s in test_signals}
    curves: dict[str, Roc] = {}
    for k, seed in enumerate(seeds):
        ae, _ = fit_autoencoder(train, cfg, torch.Generator().manual_seed(seed))
        bkg = ae.score(test_background).numpy()
        for sig, x in test_signals.items():
            s = ae.score(x).numpy()
            for name, value in signal_metrics(bkg, s, eps_s).items():
                metrics[sig].setdefault(name, []).append(value)
            if k == 0:
                curves[sig] = roc(bkg, s)
    return Evaluation(metrics, curves)
