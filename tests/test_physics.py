"""The shipped default events are physically sane (they come from Pythia 8 + FastJet + our detector)."""

import numpy as np
import pytest

from anomclr_ray.events import layout as L
from anomclr_ray.events.io import EventFile
from anomclr_ray.events.kinematics import invariant_mass, transverse_mass
from anomclr_ray.events.validate import multiplicities


@pytest.fixture(scope="module")
def background(default_data):
    with EventFile(default_data / L.FILE_NAMES[L.BACKGROUND]) as f:
        return f.read(), f.labels()


def _process(background, name):
    x, labels = background
    return x[labels == L.PROCESS_LABELS[name]]


def test_cocktail_fractions_match_the_adc2021_mixture(background):
    _, labels = background
    frac = np.bincount(labels, minlength=4) / len(labels)
    np.testing.assert_allclose(frac, [0.592, 0.338, 0.067, 0.003], atol=1e-4)


def test_w_transverse_mass_has_its_jacobian_edge_near_80_gev(background):
    w = _process(background, "w")
    m = multiplicities(w)
    w = w[m["electron"] + m["muon"] == 1]
    lead = np.where(w[:, L.ELECTRONS.start, L.PT] > 0, L.ELECTRONS.start, L.MUONS.start)
    i = np.arange(len(w))
    mt = transverse_mass(w[i, lead, L.PT], w[i, lead, L.PHI], w[:, 0, L.PT], w[:, 0, L.PHI])
    counts, edges = np.histogram(mt, bins=np.arange(0, 150, 5))
    peak = counts.argmax()
    half = peak + np.flatnonzero(counts[peak:] < counts[peak] / 2)[0]  # first bin below half maximum
    assert 60 <= edges[peak] <= 80, edges[peak]
    assert 75 <= edges[half] <= 95, edges[half]
    assert (mt > 120).mean() < 0.02


def test_z_dilepton_mass_peaks_at_91_gev(background):
    z = _process(background, "z")
    m = multiplicities(z)
    z = z[(m["electron"] >= 2) | (m["muon"] >= 2)]
    first = np.where(z[:, L.MUONS.start + 1, L.PT] > 0, L.MUONS.start, L.ELECTRONS.start)
    i = np.arange(len(z))
    a, b = z[i, first], z[i, first + 1]
    mll = invariant_mass(a[:, L.PT], a[:, L.ETA], a[:, L.PHI], b[:, L.PT], b[:, L.ETA], b[:, L.PHI])
    counts, edges = np.histogram(mll, bins=np.arange(50, 130, 2))
    assert 86 <= edges[counts.argmax()] <= 94
    assert 86 <= np.median(mll) <= 95


def test_ttbar_and_qcd_have_more_jets_than_w(background):
    jets = {p: multiplicities(_process(background, p))["jet"].mean() for p in L.PROCESS_LABELS}
    assert jets["ttbar"] > 2 * jets["w"]
    assert jets["qcd"] > 2 * jets["w"]


def test_ato4l_is_lepton_rich(default_data):
    with EventFile(default_data / L.FILE_NAMES["ato4l"]) as f:
        m = multiplicities(f.read())
    assert (m["electron"] + m["muon"]).mean() > 2.5


def _signal(default_data, name):
    with EventFile(default_data / L.FILE_NAMES[name]) as f:
        return f.read()


def test_charged_higgs_comes_from_top_pairs(default_data, background):
    """h+- from t tbar -> h+ b W- bbar: two b jets and the W's decay products, so top-like jet
    multiplicity and HT, far above W's; the extra neutrinos of h+ -> tau nu give more MET than t tbar."""
    hc = _signal(default_data, "hc_taunu")
    jets = multiplicities(hc)["jet"]
    w_jets = multiplicities(_process(background, "w"))["jet"].mean()
    assert jets.mean() > 4 * w_jets
    assert (jets >= 2).mean() > 0.95 and (jets >= 4).mean() > 0.5
    ht = hc[:, L.JETS, L.PT].sum(1)  # scalar sum of jet pT: a b-tag-free proxy of top decays
    assert np.median(ht) > np.percentile(background[0][:, L.JETS, L.PT].sum(1), 75) * 2
    assert np.median(hc[:, 0, L.PT]) > np.median(_process(background, "ttbar")[:, 0, L.PT])


def test_leptoquark_pairs_give_two_b_jets_or_more(default_data):
    """LQ LQbar -> b tau b tau: at least two jets (the b's) in nearly every event."""
    jets = multiplicities(_signal(default_data, "leptoquark"))["jet"]
    assert (jets >= 2).mean() > 0.9
