"""The calibration report: a data directory's figures against the published ADC2021 files' (reference.py).

Writes `calibration.md` (every compared figure, ours against published, with its verdict) and one PNG
per sample with the published values overlaid on ours. `anomclr generate` writes it for the shipped
set; `anomclr validate --reference` writes it for any directory of ADC2021-layout files, the real
ones included.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import layout as L
from . import reference as R
from .io import read_samples
from ..errors import MissingFileError

REPORT = "calibration.md"


def calibration_report(data_dir: str | Path, out_dir: str | Path, max_events: int = 1_000_000
                       ) -> tuple[list[R.Figure], Path]:
    """Compare every sample of `data_dir` with the published figures; write the table and the plots
    into `out_dir`. Returns the figures and the table's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    samples = {s: x for s, (x, _) in read_samples(data_dir, max_events).items()}
    if not samples:
        raise MissingFileError(f"{data_dir}: no ADC2021 sample file found (expected e.g. "
                                f"{L.FILE_NAMES[L.BACKGROUND]})")
    figures = [f for sample, x in samples.items() for f in R.compare(sample, x)]
    counts = ", ".join(f"{s} {len(x):,}" for s, x in samples.items())
    text = (f"# Calibration against the published ADC2021 files\n\nData: `{data_dir}` ({counts} events read).\n"
            "Published figures and sources: docs/data.md. A multiplicity bin agrees within max(25 % relative, "
            "0.02 absolute), MET within 15 %.\n\n" + R.markdown_table(figures))
    path = out_dir / REPORT
    path.write_text(text)
    for sample, x in samples.items():
        _plot(sample, x, out_dir / f"calibration_{sample}.png")
    return figures, path


def _plot(sample: str, x: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref = R.PUBLISHED[sample]
    frac = R.multiplicity_fractions(x)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, quantity, bins, label in ((axes[0], "n_jet", R.JET_BINS, "jets"),
                                      (axes[1], "n_lepton", R.LEPTON_BINS, "electrons + muons")):
        pos = np.arange(len(bins))
        ax.bar(pos, frac[quantity], width=0.8, alpha=0.5, label="ours")
        ax.plot(pos, ref[quantity], "ko", label="published")
        ax.set_xticks(pos, bins)
        ax.set_yscale("log")
        ax.set_ylim(1e-4, 1.5)
        ax.set_xlabel(f"number of {label}")
        ax.set_ylabel("fraction of events")
    met = x[:, L.MET.start, L.PT]
    ax = axes[2]
    top = 1.6 * max(float(ref["met"][3]), R.met_statistics(x)["q99"])
    ax.hist(met, bins=np.linspace(0, top, 61), density=True, histtype="step",
            lw=1.5, label="ours")
    for value, style, name in zip(ref["met"], ("-", "--", ":", "-."), R.MET_STATS):
        ax.axvline(value, color="k", ls=style, lw=1, label=f"published {name}")
        ax.axvline(R.met_statistics(x)[name], color="C0", ls=style, lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("MET [GeV] (lines: mean, median, 90 %, 99 %)")
    ax.legend(fontsize=7)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{L.SIGNAL_TEXT.get(sample, sample)}: {len(x):,} events against the published file")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
