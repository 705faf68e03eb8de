"""Per-signal metrics from anomaly scores (higher = more anomalous): ROC, AUC, SI, epsilon_B at epsilon_S.

Signal efficiency eps_S and background efficiency eps_B are the fractions above a score threshold;
SI(eps_S) = eps_S / sqrt(eps_B) (significance improvement). All vectorised (numpy).

`SIGNAL_METRICS` is the one list of per-signal metrics: each entry computes its value from the ROC and
carries its labels and whether it is averaged over the signals. Trials log every entry, and names,
figures and reports read it from here: a new metric is one entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

EPS_S = 0.3  # the fixed signal efficiency of SI and eps_B (the paper's Fig. 1): the one default


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


@dataclass(frozen=True)
class SignalMetric:
    """A per-signal metric: `compute(curve, eps_s, n_background)`; `short` names it in table headers;
    `label` (figures, LaTeX) and `text` (tables) may hold "{eps_s}", replaced by the signal efficiency
    used; `mean`: also averaged over the signals (`<name>/mean`)."""

    compute: Callable[[Roc, float, int], float]
    short: str
    label: str
    text: str
    mean: bool = False

    def labelled(self, eps_s: float, latex: bool = True) -> str:
        return (self.label if latex else self.text).replace("{eps_s}", f"{eps_s:g}")


def _si(curve: Roc, eps_s: float, _n: int) -> float:
    eb = eps_b_at(curve, eps_s)
    return eps_s / np.sqrt(eb) if eb > 0 else float("inf")


def _inverse_eb(curve: Roc, eps_s: float, _n: int) -> float:
    eb = eps_b_at(curve, eps_s)
    return 1.0 / eb if eb > 0 else float("inf")


SIGNAL_METRICS: dict[str, SignalMetric] = {
    "auc": SignalMetric(lambda c, _e, _n: auc(c), "AUC", "AUC", "AUC", mean=True),
    "si": SignalMetric(_si, "SI", r"SI = $\epsilon_S/\sqrt{\epsilon_B}$ at $\epsilon_S$ = {eps_s}", "SI at ε_S = {eps_s}",
                       mean=True),
    "eb_at_es": SignalMetric(lambda c, e, _n: eps_b_at(c, e), "ε_B", r"$\epsilon_B$ at $\epsilon_S$ = {eps_s}",
                             "ε_B at ε_S = {eps_s}"),
    "inv_eb_at_es": SignalMetric(_inverse_eb, "1/ε_B", r"$1/\epsilon_B$ at $\epsilon_S$ = {eps_s}", "1/ε_B at ε_S = {eps_s}"),
    # the ADC2021 challenge metric: NaN below 1e6 background events (fewer than 10 above the cut)
    "es_at_eb_1e-5": SignalMetric(lambda c, _e, n: eps_s_at(c, 1e-5) if n >= 1_000_000 else float("nan"),
                                  "ε_S(10⁻⁵)", r"$\epsilon_S$ at $\epsilon_B = 10^{-5}$", "ε_S at ε_B = 10⁻⁵"),
}


def signal_metrics(background: np.ndarray, signal: np.ndarray, eps_s: float = EPS_S) -> dict[str, float]:
    """Every metric of `SIGNAL_METRICS` for one signal's scores against the background's."""
    curve = roc(background, signal)
    return {name: float(m.compute(curve, eps_s, len(background))) for name, m in SIGNAL_METRICS.items()}


def metric_label(name: str, eps_s: float = EPS_S, latex: bool = True) -> str:
    """A metric's label at the signal efficiency used (the name itself for a metric not listed)."""
    return SIGNAL_METRICS[name].labelled(eps_s, latex) if name in SIGNAL_METRICS else name


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
