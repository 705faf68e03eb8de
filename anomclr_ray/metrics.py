"""Per-signal metrics from anomaly scores (higher = more anomalous): ROC, AUC, SI, epsilon_B at epsilon_S.

Signal efficiency eps_S and background efficiency eps_B are the fractions above a score threshold;
SI(eps_S) = eps_S / sqrt(eps_B) (significance improvement). All vectorised (numpy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Roc:
    """eps_B and eps_S at every threshold (descending score), starting at (0, 0)."""

    eps_b: np.ndarray
    eps_s: np.ndarray


def thin(curve: Roc, n: int = 400) -> Roc:
    """At most ~2n points of `curve`, spread evenly in eps_S and in log eps_B: enough to plot it again."""
    if len(curve.eps_b) <= 2 * n:
        return curve
    even = np.linspace(0, len(curve.eps_b) - 1, n).astype(int)
    low = np.searchsorted(curve.eps_b, np.logspace(-7, 0, n)).clip(max=len(curve.eps_b) - 1)
    keep = np.unique(np.r_[even, low])
    return Roc(curve.eps_b[keep], curve.eps_s[keep])


def roc(background: np.ndarray, signal: np.ndarray) -> Roc:
    """ROC curve of scores; ties are treated as one threshold."""
    background, signal = np.asarray(background, np.float64), np.asarray(signal, np.float64)
    if len(background) == 0 or len(signal) == 0:
        raise ValueError("roc: need at least one background and one signal score")
    if not (np.isfinite(background).all() and np.isfinite(signal).all()):
        raise ValueError("roc: scores contain NaN or inf")
    scores = np.concatenate([background, signal])
    is_sig = np.concatenate([np.zeros(len(background)), np.ones(len(signal))])
    order = np.argsort(-scores, kind="stable")
    scores, is_sig = scores[order], is_sig[order]
    last = np.r_[scores[1:] != scores[:-1], True]  # last index of each group of equal scores
    tp = np.cumsum(is_sig)[last]
    fp = np.cumsum(1 - is_sig)[last]
    return Roc(np.r_[0.0, fp / len(background)], np.r_[0.0, tp / len(signal)])


def auc(curve: Roc) -> float:
    """Area under eps_S(eps_B) (trapezoids; ties count one half, as in the Mann-Whitney statistic)."""
    return float(np.trapezoid(curve.eps_s, curve.eps_b))


def eps_b_at(curve: Roc, eps_s: float) -> float:
    """Background efficiency at signal efficiency `eps_s` (linear interpolation on the ROC)."""
    return float(np.interp(eps_s, curve.eps_s, curve.eps_b))


def eps_s_at(curve: Roc, eps_b: float) -> float:
    """Signal efficiency at background efficiency `eps_b` (ADC2021 challenge metric at 1e-5)."""
    return float(np.interp(eps_b, curve.eps_b, curve.eps_s))


def significance_improvement(curve: Roc, min_eps_b: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """SI curve (eps_S, eps_S / sqrt(eps_B)), skipping eps_B = 0 and eps_B below `min_eps_b`."""
    keep = curve.eps_b > (min_eps_b or 0.0)
    return curve.eps_s[keep], curve.eps_s[keep] / np.sqrt(curve.eps_b[keep])


def signal_metrics(background: np.ndarray, signal: np.ndarray, eps_s: float = 0.3) -> dict[str, float]:
    """AUC, SI and eps_B at the fixed signal efficiency `eps_s`, and eps_S at eps_B = 1e-5.

    eps_S at 1e-5 is NaN when the background holds fewer than 1e6 events (fewer than 10 above the cut).
    """
    curve = roc(background, signal)
    eb = eps_b_at(curve, eps_s)
    return {
        "auc": auc(curve),
        "eb_at_es": eb,
        "inv_eb_at_es": 1.0 / eb if eb > 0 else float("inf"),
        "si": eps_s / np.sqrt(eb) if eb > 0 else float("inf"),
        "es_at_eb_1e-5": eps_s_at(curve, 1e-5) if len(background) >= 1_000_000 else float("nan"),
    }


def save_curves(curves: dict[str, Roc], path) -> None:
    """ROC curves per signal (thinned) to one .npz file: `<signal>/eps_b`, `<signal>/eps_s`."""
    arrays = {}
    for sig, c in curves.items():
        t = thin(c)
        arrays[f"{sig}/eps_b"], arrays[f"{sig}/eps_s"] = t.eps_b, t.eps_s
    np.savez_compressed(path, **arrays)


def load_curves(path) -> dict[str, Roc]:
    with np.load(path) as f:
        signals = sorted({k.split("/")[0] for k in f.files})
        return {s: Roc(f[f"{s}/eps_b"], f[f"{s}/eps_s"]) for s in signals}
