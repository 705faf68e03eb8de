"""The calibration report's figures are computed from the files: a tiny file with known multiplicities."""

import numpy as np
import pytest

from anomclr_ray.cli import main
from anomclr_ray.events import layout as L
from anomclr_ray.events import reference as R
from anomclr_ray.events.io import write_events


def _events(n_jets: list[int], n_leptons: list[int], met: list[float]) -> np.ndarray:
    """Valid ADC2021 events with the given jet and e + mu counts (the first lepton triggers) and MET."""
    x = np.zeros((len(n_jets), L.N_SLOTS, L.N_FEATURES), np.float32)
    x[:, 0, L.PT] = met
    x[:, 0, L.CLASS] = L.MET_ID
    for i, (nj, nl) in enumerate(zip(n_jets, n_leptons)):
        n_e = min(nl, L.ELECTRON.n_slots)
        for k in range(n_e):
            x[i, L.ELECTRONS.start + k] = (40.0 - k, 0.1, 0.2, L.ELECTRON_ID)
        for k in range(nl - n_e):
            x[i, L.MUONS.start + k] = (30.0 - k, 0.1, 0.2, L.MUON_ID)
        for k in range(nj):
            x[i, L.JETS.start + k] = (100.0 - k, 0.3, -1.0, L.JET_ID)
    return x


def test_figures_count_the_events_bins():
    # 10 events: jets 0 (4x), 1 (3x), 2, 3, 7 (>= 6); leptons 1 (6x), 2 (3x), 5 (counted in no bin)
    x = _events([0, 0, 0, 0, 1, 1, 1, 2, 3, 7], [1, 1, 1, 1, 1, 1, 2, 2, 2, 5], [10.0 * k for k in range(1, 11)])
    frac = R.multiplicity_fractions(x)
    assert frac["n_jet"].tolist() == pytest.approx([0.4, 0.3, 0.1, 0.1, 0.0, 0.0, 0.1])
    assert frac["n_lepton"].tolist() == pytest.approx([0.6, 0.3, 0.0, 0.0])
    met = R.met_statistics(x)
    assert met["mean"] == pytest.approx(55.0) and met["median"] == pytest.approx(55.0)


def test_every_published_figure_is_compared_once_with_its_tolerance():
    assert R.n_compared() == 54
    x = _events([0] * 62 + [1] * 27 + [2] * 9 + [3] * 2, [1] * 100, [39.0] * 50 + [45.0] * 50)
    rows = {(f.quantity, f.bin): f for f in R.compare(L.BACKGROUND, x)}
    # background: jet bins 0-3, one lepton bin, MET mean and median (the rest are below 2 %)
    assert set(rows) == {("n_jet", "0"), ("n_jet", "1"), ("n_jet", "2"), ("n_jet", "3"), ("n_lepton", "1"),
                         ("met", "mean"), ("met", "median")}
    assert rows["n_jet", "0"].ours == pytest.approx(0.62) and rows["n_jet", "0"].ok
    assert rows["n_jet", "3"].tolerance == pytest.approx(0.02)  # the absolute floor: 25 % of 0.024 is less
    assert rows["n_jet", "0"].tolerance == pytest.approx(0.155)
    assert rows["met", "mean"].ours == pytest.approx(42.0) and rows["met", "mean"].ok
    far = R.compare(L.BACKGROUND, _events([4] * 10, [2] * 10, [100.0] * 10))
    assert not any(f.ok for f in far)


def test_validate_reference_writes_the_table_and_plots(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    write_events(data / L.FILE_NAMES[L.BACKGROUND], _events([0] * 6 + [1] * 3 + [2], [1] * 10, [40.0] * 10))
    write_events(data / L.FILE_NAMES["ato4l"], _events([2, 3, 4, 1], [4, 3, 2, 1], [25.0, 29.0, 33.0, 20.0]))
    out = tmp_path / "report"
    assert main(["validate", "--data-dir", str(data), "--reference", "--out", str(out)]) == 2
    assert "no file for sample 'leptoquark'" in capsys.readouterr().err and not out.exists()
    for sample in ("leptoquark", "h_tautau", "hc_taunu"):
        write_events(data / L.FILE_NAMES[sample], _events([3], [1], [50.0]))
    assert main(["validate", "--data-dir", str(data), "--reference", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    table = (out / "calibration.md").read_text()
    assert "| background | n_jet | 0 | 0.6200 | 0.6000 | ±0.1550 | yes |" in table
    assert "| ato4l | n_lepton | 4 | 0.1800 | 0.2500 | ±0.0450 | **no** |" in table
    ok = table.count("| yes |")
    assert f"{ok} of 54 figures within tolerance" in table and f"{ok} of 54 figures within tolerance" in printed
    assert all((out / f"calibration_{s}.png").stat().st_size > 0 for s in L.SAMPLES)
    assert main(["validate", str(data / L.FILE_NAMES["ato4l"]), "--reference"]) == 2  # needs a directory
