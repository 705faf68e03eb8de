"""What public sources show of the published ADC2021 files, and a figure-by-figure comparison with any data.

The published files cannot be downloaded here; their figures were read off public notebooks (jet and
lepton multiplicities, MET per file; docs/data.md lists the sources). The stand-in is calibrated to them,
and a user with the real files can run the same comparison on them (`anomclr validate --reference`).

A figure is one multiplicity bin with a published fraction of at least `MIN_COMPARED_FRACTION`, or the
MET mean or median, per sample. A bin agrees within max(25 % relative, 0.02 absolute); MET within 15 %.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import layout as L

# Source: aaditep/ADC2021-examplecode `Dense_AE.ipynb` (jets cell 30, leptons 32, MET 36), read off its
# histograms: multiplicity fractions +-3 % relative, MET +- one histogram bin.
JET_BINS = ("0", "1", "2", "3", "4", "5", ">=6")
LEPTON_BINS = ("1", "2", "3", "4")
PUBLISHED: dict[str, dict] = {
    L.BACKGROUND: {"n_jet": (0.62, 0.27, 0.085, 0.024, 0.0071, 0.0025, 0.0021), "mean_n_jet": 0.56,
                   "n_lepton": (0.99, 0.0070, 6.3e-4, 9e-5), "met": (42, 39, 70, 104)},
    "ato4l": {"n_jet": (0.031, 0.147, 0.28, 0.28, 0.17, 0.077, 0.037), "mean_n_jet": 2.78,
              "n_lepton": (0.16, 0.35, 0.32, 0.18), "met": (29, 25, 49, 100)},
    "leptoquark": {"n_jet": (0.006, 0.077, 0.23, 0.30, 0.22, 0.117, 0.074), "mean_n_jet": 3.30,
                   "n_lepton": (0.61, 0.33, 0.072, 0.009), "met": (44, 39, 80, 151)},
    "h_tautau": {"n_jet": (0.075, 0.243, 0.27, 0.19, 0.105, 0.060, 0.075), "mean_n_jet": 2.54,
                 "n_lepton": (0.75, 0.23, 0.038, 0.007), "met": (54, 42, 107, 240)},
    "hc_taunu": {"n_jet": (0.011, 0.071, 0.20, 0.26, 0.23, 0.138, 0.109), "mean_n_jet": 3.51,
                 "n_lepton": (0.64, 0.31, 0.064, 0.0076), "met": (95, 80, 175, 348)},
}
MET_STATS = ("mean", "median", "q90", "q99")
COMPARED_MET_STATS = ("mean", "median")
MIN_COMPARED_FRACTION = 0.02
BIN_REL_TOL, BIN_ABS_TOL, MET_REL_TOL = 0.25, 0.02, 0.15


@dataclass(frozen=True)
class Figure:
    """One compared figure: sample, quantity (`n_jet`, `n_lepton`, `met`), bin or statistic, both values."""

    sample: str
    quantity: str
    bin: str
    published: float
    ours: float

    @property
    def tolerance(self) -> float:
        if self.quantity == "met":
            return MET_REL_TOL * self.published
        return max(BIN_REL_TOL * self.published, BIN_ABS_TOL)

    @property
    def ok(self) -> bool:
        return abs(self.ours - self.published) <= self.tolerance


def multiplicity_fractions(x: np.ndarray) -> dict[str, np.ndarray]:
    """Fractions of events per jet bin (0..5, >= 6) and per e + mu count (1..4), from (N, 19, 4) events."""
    n = max(len(x), 1)
    n_jet = np.minimum((x[:, L.JETS, L.CLASS] == L.JET_ID).sum(1), len(JET_BINS) - 1)
    n_lep = (x[:, L.LEPTONS, L.CLASS] > 0).sum(1)
    return {"n_jet": np.bincount(n_jet, minlength=len(JET_BINS))[: len(JET_BINS)] / n,
            "n_lepton": np.array([(n_lep == int(b)).sum() for b in LEPTON_BINS]) / n}


def met_statistics(x: np.ndarray) -> dict[str, float]:
    """MET mean, median and 90 % / 99 % quantiles in GeV."""
    met = x[:, L.MET.start, L.PT].astype(np.float64)
    if len(met) == 0:
        return dict.fromkeys(MET_STATS, float("nan"))
    q = np.quantile(met, [0.5, 0.9, 0.99])
    return {"mean": float(met.mean()), "median": float(q[0]), "q90": float(q[1]), "q99": float(q[2])}


def compare(sample: str, x: np.ndarray) -> list[Figure]:
    """Every compared figure of `sample` (a key of PUBLISHED) for events `x` (N, 19, 4)."""
    ref = PUBLISHED[L.check_sample(sample)]
    frac = multiplicity_fractions(x)
    met = met_statistics(x)
    rows = []
    for quantity, bins in (("n_jet", JET_BINS), ("n_lepton", LEPTON_BINS)):
        for b, pub, ours in zip(bins, ref[quantity], frac[quantity]):
            if pub >= MIN_COMPARED_FRACTION:
                rows.append(Figure(sample, quantity, b, pub, float(ours)))
    for i, stat in enumerate(MET_STATS):
        if stat in COMPARED_MET_STATS:
            rows.append(Figure(sample, "met", stat, float(ref["met"][i]), met[stat]))
    return rows


def n_compared() -> int:
    """How many figures a complete comparison holds (54)."""
    return sum(sum(f >= MIN_COMPARED_FRACTION for f in ref[q]) for ref in PUBLISHED.values()
               for q in ("n_jet", "n_lepton")) + len(COMPARED_MET_STATS) * len(PUBLISHED)


def markdown_table(figures: list[Figure]) -> str:
    """The comparison as a Markdown table with the verdict per figure and the count matched."""
    lines = ["| sample | quantity | bin | published | ours | tolerance | within |", "|---|---|---|---|---|---|---|"]
    for f in figures:
        fmt = "{:.1f}" if f.quantity == "met" else "{:.4f}"
        lines.append(f"| {f.sample} | {f.quantity} | {f.bin} | {fmt.format(f.published)} | {fmt.format(f.ours)} | "
                     f"±{fmt.format(f.tolerance)} | {'yes' if f.ok else '**no**'} |")
    lines.append("")
    lines.append(f"{sum(f.ok for f in figures)} of {len(figures)} figures within tolerance"
                 f" ({n_compared()} in a complete comparison).")
    return "\n".join(lines) + "\n"
