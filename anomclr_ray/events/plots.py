"""Validation plots of a data directory: multiplicities, leading pT, MET per process and signal."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import layout as L
from .io import read_samples
from .validate import multiplicities


def _samples(data_dir: Path, max_events: int) -> dict[str, np.ndarray]:
    """Per background process and per signal: up to `max_events` events."""
    out: dict[str, np.ndarray] = {}
    for sample, (x, labels) in read_samples(data_dir, max_events).items():
        if sample == L.BACKGROUND and labels is not None:
            for proc, lab in L.PROCESS_LABELS.items():
                if (labels == lab).any():
                    out[proc] = x[labels == lab]
        else:
            out[sample] = x
    return out


def validation_plots(data_dir: str | Path, out_dir: str | Path, max_events: int = 200_000) -> list[Path]:
    """Write PNG histograms comparing all processes and signals; returns the written paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data_dir, out_dir = Path(data_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    samples = _samples(data_dir, max_events)
    latex = {**L.PROCESS_LATEX, **L.SIGNAL_LATEX}
    quantities = {
        "met": ("MET [GeV]", lambda x: x[:, 0, L.PT], np.linspace(0, 200, 41)),
        "lead_electron_pt": ("leading electron $p_T$ [GeV]", lambda x: x[:, L.ELECTRONS.start, L.PT], np.linspace(0, 200, 41)),
        "lead_muon_pt": ("leading muon $p_T$ [GeV]", lambda x: x[:, L.MUONS.start, L.PT], np.linspace(0, 200, 41)),
        "lead_jet_pt": ("leading jet $p_T$ [GeV]", lambda x: x[:, L.JETS.start, L.PT], np.linspace(0, 300, 41)),
        "n_electrons": ("electron multiplicity", lambda x: multiplicities(x)["electron"], np.arange(-0.5, 5.5)),
        "n_muons": ("muon multiplicity", lambda x: multiplicities(x)["muon"], np.arange(-0.5, 5.5)),
        "n_jets": ("jet multiplicity", lambda x: multiplicities(x)["jet"], np.arange(-0.5, 11.5)),
    }
    paths = []
    for key, (label, fn, bins) in quantities.items():
        fig, ax = plt.subplots(figsize=(6, 4.2))
        for name, x in samples.items():
            v = fn(x)
            if key.startswith("lead_") and not key.startswith("lead_jet"):
                v = v[v > 0]
            ax.hist(v, bins=bins, histtype="step", density=True, lw=1.4, label=f"{latex.get(name, name)} ({len(x)})")
        ax.set_xlabel(label)
        ax.set_ylabel("normalised events")
        ax.set_yscale("log")
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        path = out_dir / f"{key}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
