"""Plots and tables for physicists: ROC and SI curves per signal, method colours kept consistent."""

from __future__ import annotations

from pathlib import Path

from .events import layout as L
from .metrics import Roc, significance_improvement

METHOD_COLORS = {"ae_raw": "#444444", "clr": "#1f77b4", "anomclr": "#d62728", "anomclr_plus": "#2ca02c"}
METHOD_LABELS = {"ae_raw": "AE-Raw", "clr": "CLR", "anomclr": "AnomCLR", "anomclr_plus": "AnomCLR+"}


def plot_curves(curves: dict[str, dict[str, Roc]], out_dir: str | Path) -> list[Path]:
    """curves[method][signal] -> roc.png (1/eps_B vs eps_S) and si.png (eps_S / sqrt(eps_B) vs eps_S)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    signals = sorted({s for c in curves.values() for s in c}, key=list(L.SIGNALS).index)
    paths = []
    for kind in ("roc", "si"):
        fig, axes = plt.subplots(1, len(signals), figsize=(4 * len(signals), 3.6), squeeze=False)
        for ax, sig in zip(axes[0], signals):
            for method, per_sig in curves.items():
                if sig not in per_sig:
                    continue
                c = per_sig[sig]
                color, label = METHOD_COLORS.get(method), METHOD_LABELS.get(method, method)
                if kind == "roc":
                    keep = c.eps_b > 0
                    ax.plot(c.eps_s[keep], 1 / c.eps_b[keep], color=color, label=label)
                    ax.set_yscale("log")
                    ax.set_ylabel(r"background rejection $1/\epsilon_B$")
                else:
                    es, si = significance_improvement(c, min_eps_b=1e-3)
                    ax.plot(es, si, color=color, label=label)
                    ax.set_ylabel(r"SI = $\epsilon_S/\sqrt{\epsilon_B}$")
            ax.set_xlabel(r"signal efficiency $\epsilon_S$")
            ax.set_title(L.SIGNAL_LATEX.get(sig, sig))
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / f"{kind}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def metrics_table(summaries: dict[str, dict[str, dict[str, float]]], metric: str = "auc") -> str:
    """Markdown table: rows = methods, columns = signals, cells = mean ± std of `metric`."""
    signals = [s for s in L.SIGNALS if any(s in v for v in summaries.values())]
    head = "| method | " + " | ".join(L.SIGNAL_LATEX[s] for s in signals) + " |"
    rows = [head, "|" + " --- |" * (len(signals) + 1)]
    for method, per_sig in summaries.items():
        cells = [f"{per_sig[s][metric]:.3f} ± {per_sig[s][metric + '_std']:.3f}" if s in per_sig else "—" for s in signals]
        rows.append(f"| {METHOD_LABELS.get(method, method)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)

