"""Figures and tables for physicists, from numbers already computed: ROC and SI curves per signal,
per-signal bars of a metric per ablation value (paper Fig. 2), metrics versus a number such as the
representation dimension (Fig. 3), Markdown tables. Signal names in physics notation, one colour per
method everywhere. Reading the numbers (from MLflow) is `build`'s job.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..events import layout as L
from ..method.metrics import EPS_S, Roc, metric_label, significance_improvement
from ..method.names import BASELINE, METHOD_KEY, method_color, method_label

Summary = dict[str, dict[str, float]]  # {signal: {metric: mean, metric + "_std": std}}

AXIS_LABELS = {METHOD_KEY: "method", "train.mix": "anomaly augmentation mix", "model.model_dim": "representation dimension",
               "score.bottleneck": "AE bottleneck dimension", "train.temperature": r"temperature $\tau$",
               "train.learning_rate": "learning rate", "train.batch_size": "batch size",
               "model.embedding_dim": "embedding dimension", "model.kind": "encoder",
               "data.n_train": "encoder training events", "train.epochs": "encoder epochs"}


def lighter(colour: str, fraction: float) -> str:
    """`colour` mixed with `fraction` of white: shades of one method's colour for lines of that method."""
    from matplotlib.colors import to_hex, to_rgb

    return to_hex(tuple(c + (1 - c) * fraction for c in to_rgb(colour)))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: str | Path) -> Path:
    """Lay out, write and close a figure; its path."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def _reference_band(ax, ref: float, err: float, color: str, label: str | None = None) -> None:
    """A reference value across the panel: a dashed line with its ± err band (the AE-Raw baseline)."""
    ax.axhline(ref, color=color, ls="--", lw=1, label=label)
    ax.axhspan(ref - err, ref + err, color=color, alpha=0.1, lw=0)


def _ordered_signals(signals) -> list[str]:
    return sorted(set(signals), key=list(L.SIGNALS).index)


def plot_curves(curves: dict[str, dict[str, Roc]], out_dir: str | Path) -> list[Path]:
    """curves[method][signal] -> roc.png (1/eps_B vs eps_S) and si.png (eps_S / sqrt(eps_B) vs eps_S)."""
    plt = _pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    signals = _ordered_signals(s for c in curves.values() for s in c)
    paths = []
    for kind in ("roc", "si"):
        fig, axes = plt.subplots(1, len(signals), figsize=(4 * len(signals), 3.6), squeeze=False)
        for ax, sig in zip(axes[0], signals):
            for method, per_sig in curves.items():
                if sig not in per_sig:
                    continue
                c = per_sig[sig]
                color = method_color(method)
                if kind == "roc":
                    keep = c.eps_b > 0
                    ax.plot(c.eps_s[keep], 1 / c.eps_b[keep], color=color, label=method_label(method))
                    ax.set_yscale("log")
                    ax.set_ylabel(r"background rejection $1/\epsilon_B$")
                else:
                    es, si = significance_improvement(c, min_eps_b=1e-3)
                    ax.plot(es, si, color=color, label=method_label(method))
                    ax.set_ylabel(r"SI = $\epsilon_S/\sqrt{\epsilon_B}$")
            ax.set_xlabel(r"signal efficiency $\epsilon_S$")
            ax.set_title(L.SIGNAL_LATEX.get(sig, sig))
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=8)
        paths.append(_save(plt, fig, out_dir / f"{kind}.png"))
    return paths


def metrics_table(summaries: dict[str, dict[str, dict[str, float]]], metric: str = "auc",
                  first_column: str = "method") -> str:
    """Markdown table: rows = methods (or any labels), columns = signals, cells = mean ± std of `metric`."""
    signals = [s for s in L.SIGNALS if any(s in v for v in summaries.values())]
    head = f"| {first_column} | " + " | ".join(L.SIGNAL_TEXT[s] for s in signals) + " |"
    rows = [head, "|" + " --- |" * (len(signals) + 1)]
    for method, per_sig in summaries.items():
        cells = [f"{per_sig[s][metric]:.3f} ± {per_sig[s][metric + '_std']:.3f}" if s in per_sig else "—" for s in signals]
        rows.append(f"| {method_label(method)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def plot_bars(summaries: dict[str, Summary], path: str | Path, title: str, metrics: tuple[str, ...] = ("auc", "si"),
              reference: Summary | None = None, eps_s: float = EPS_S) -> Path:
    """Paper Fig. 2: per signal, one bar per group (e.g. augmentation mix) with its std as error bar;
    `reference` (the AE-Raw baseline) a dashed line with its ± std band across each signal's bars.

    summaries[group][signal] = {metric: mean, metric + "_std": std}.
    """
    plt = _pyplot()
    groups = list(summaries)
    signals = _ordered_signals(s for v in summaries.values() for s in v)
    fig, axes = plt.subplots(len(metrics), 1, figsize=(2.2 * len(signals) + 2, 3.2 * len(metrics)), squeeze=False)
    width = 0.8 / len(groups)
    x = np.arange(len(signals))
    for ax, metric in zip(axes[:, 0], metrics):
        for i, g in enumerate(groups):
            mean = [summaries[g].get(s, {}).get(metric, np.nan) for s in signals]
            std = [summaries[g].get(s, {}).get(metric + "_std", 0.0) for s in signals]
            ax.bar(x + (i - (len(groups) - 1) / 2) * width, mean, width, yerr=std, capsize=3,
                   label=method_label(g), color=method_color(g, f"C{i}"))
        for j, s in enumerate(signals):
            if reference and metric in reference.get(s, {}):
                ref, err = reference[s][metric], reference[s].get(metric + "_std", 0.0)
                ax.hlines(ref, j - 0.45, j + 0.45, colors="black", linestyles="--", lw=1.2, zorder=3,
                          label=method_label(BASELINE) if j == 0 else None)
                ax.fill_between([j - 0.45, j + 0.45], ref - err, ref + err, color="black", alpha=0.12, lw=0, zorder=3)
        ax.set_xticks(x, [L.SIGNAL_LATEX[s] for s in signals])
        ax.set_ylabel(metric_label(metric, eps_s))
        if metric == "auc":
            ax.axhline(0.5, color="grey", lw=0.8, ls=":")
            ax.set_ylim(0, 1)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].set_title(title)
    axes[0, 0].legend(fontsize=8, ncol=min(len(groups), 6))
    return _save(plt, fig, path)


def plot_versus(series: dict[float, Summary], path: str | Path, xlabel: str, metrics: tuple[str, ...] = ("auc", "si"),
                log_x: bool = True, reference: Summary | None = None, eps_s: float = EPS_S) -> Path:
    """Paper Fig. 3: each metric per signal versus a number (e.g. the representation dimension), ± std;
    `reference` (the AE-Raw baseline) a dashed line with its ± std band per signal, in its colour.

    series[x][signal] = {metric: mean, metric + "_std": std}.
    """
    plt = _pyplot()
    xs = sorted(series)
    signals = _ordered_signals(s for v in series.values() for s in v)
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for i, s in enumerate(signals):
            mean = np.array([series[x].get(s, {}).get(metric, np.nan) for x in xs])
            std = np.array([series[x].get(s, {}).get(metric + "_std", 0.0) for x in xs])
            ax.errorbar(xs, mean, yerr=std, marker="o", capsize=3, label=L.SIGNAL_LATEX[s], color=f"C{i}")
            if reference and metric in reference.get(s, {}):
                _reference_band(ax, reference[s][metric], reference[s].get(metric + "_std", 0.0), f"C{i}")
        if reference:
            ax.plot([], [], color="grey", ls="--", lw=1, label=f"{method_label(BASELINE)} (dashed)")
        if log_x:
            ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [f"{x:g}" for x in xs])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(metric_label(metric, eps_s))
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    return _save(plt, fig, path)



def plot_lines(lines: dict[str, dict[float, dict[str, float]]], panels: dict[str, str], path: str | Path,
               xlabel: str, ylabel: str, styles: dict[str, tuple[str, str]] | None = None,
               reference: dict[str, tuple[float, float]] | None = None, log_x: bool | None = True,
               ylim: tuple[float, float] | None = None) -> Path:
    """One panel per key of `panels` ({key: title}), in each a line per entry of `lines` against a number:
    lines[label][x] = {key: mean, key + "_std": std}; `styles[label]` = (colour, line style);
    `reference[key]` = (mean, std) drawn dashed with its band (the AE-Raw baseline). `log_x` None: a
    logarithmic x axis when the values are positive and span a factor of 8 or more."""
    if log_x is None:
        xs = [x for series in lines.values() for x in series]
        log_x = min(xs) > 0 and max(xs) >= 8 * min(xs)
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels) + 1.5, 3.4), squeeze=False)
    for ax, (key, title) in zip(axes[0], panels.items()):
        for i, (label, series) in enumerate(lines.items()):
            xs = sorted(x for x in series if key in series[x])
            color, style = (styles or {}).get(label, (f"C{i}", "-"))
            ax.errorbar(xs, [series[x][key] for x in xs], yerr=[series[x].get(key + "_std", 0.0) for x in xs],
                        marker="o", capsize=3, color=color, ls=style, label=label)
        if reference and key in reference:
            _reference_band(ax, *reference[key], "black", method_label(BASELINE))
        if log_x:
            ax.set_xscale("log", base=2)
        xs = sorted({x for series in lines.values() for x in series})
        ax.set_xticks(xs, [f"{x:g}" for x in xs])
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        if ylim:
            ax.set_ylim(*ylim)
    axes[0, 0].set_ylabel(ylabel)
    axes[0, -1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return _save(plt, fig, path)


def plot_search(points: dict[str, list[tuple[str, float, bool]]], path: str | Path, metric: str) -> Path:
    """A search's trials: `metric` versus each varied parameter, one panel per parameter.

    points[param] = [(value as text, metric, whether the trial ran its whole budget), ...]; numbers
    are placed on a log axis when they span a factor of 8 or more, other values as categories.
    """
    plt = _pyplot()
    params = list(points)
    cols = min(4, len(params))
    rows = -(-len(params) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows), squeeze=False)
    for ax, param in zip(axes.flat, params):
        values = [v for v, _, _ in points[param]]
        try:
            xs = np.array([float(v) for v in values])
            if xs.min() > 0 and xs.max() / xs.min() >= 8:
                ax.set_xscale("log")
        except ValueError:
            cats = sorted(set(values))
            xs = np.array([cats.index(v) for v in values], float)
            ax.set_xticks(range(len(cats)), [method_label(c) for c in cats], rotation=30)
        ys = np.array([m for _, m, _ in points[param]])
        full = np.array([c for _, _, c in points[param]], bool)
        ax.scatter(xs[full], ys[full], color="C0", label="whole budget")
        ax.scatter(xs[~full], ys[~full], color="C1", marker="x", label="stopped early / running")
        ax.set_xlabel(AXIS_LABELS.get(param, param))
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(params):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7)
    return _save(plt, fig, path)


def plot_ranking(points: dict[str, list[tuple[float, float, str]]], path: str | Path, xlabel: str,
                 titles: dict[str, str]) -> Path:
    """How an objective ranks trials: one panel per key of `points` (a signal or the mean), each trial a
    point (objective, test AUC) in its method's colour; `titles[key]` says the panel (e.g. its rank
    correlation)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(points), figsize=(3.6 * len(points), 3.4), squeeze=False)
    for ax, (key, pts) in zip(axes[0], points.items()):
        for method in dict.fromkeys(m for _, _, m in pts):
            xs, ys = zip(*((x, y) for x, y, m in pts if m == method))
            ax.scatter(xs, ys, color=method_color(method, "C0"), label=method_label(method), s=18)
        ax.set_title(titles[key], fontsize=9)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("test AUC")
    axes[0, -1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return _save(plt, fig, path)


def plot_null(null: dict[str, tuple[np.ndarray, float]], path: str | Path) -> Path:
    """NPLM's null toys per input ({name: (t of the null toys, dof of the χ² fitted to them)}): their
    histogram against the fitted χ² density, the check that the asymptotic Z can be trusted."""
    from scipy import stats

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(null), figsize=(4 * len(null), 3.4), squeeze=False)
    for ax, (name, (t, dof)) in zip(axes[0], null.items()):
        ax.hist(t, bins=min(30, max(5, len(t) // 5)), density=True, histtype="stepfilled", alpha=0.4,
                color=method_color(name, "C0"), label=f"{len(t)} null toys")
        grid = np.linspace(max(0.0, min(t.min(), stats.chi2.ppf(1e-3, dof))), max(t.max(), stats.chi2.ppf(0.999, dof)), 200)
        ax.plot(grid, stats.chi2.pdf(grid, dof), color="black", label=rf"$\chi^2_{{{dof:.1f}}}$")
        ax.set_title(method_label(name))
        ax.set_xlabel("t")
        ax.legend(fontsize=8)
    axes[0, 0].set_ylabel("density")
    return _save(plt, fig, path)
