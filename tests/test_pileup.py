"""Pile-up overlay and the detector's pile-up treatment, on hand-made particles (no Pythia)."""

import numpy as np
import pytest

from anomclr_ray.events import layout as L
from anomclr_ray.events.generation.detector import DetectorConfig, Particles, median_density, reconstruct
from anomclr_ray.events.generation.pileup import PileupPool


def _particles(rows: list[tuple[int, int, float, float, float]], n_events: int) -> Particles:
    """(event, pdg, pT, eta, phi) rows as massless particles."""
    evt, pdg, pt, eta, phi = (np.array(c) for c in zip(*rows))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return Particles(evt.astype(int), pdg.astype(np.int32), px, py, pz, np.sqrt(px**2 + py**2 + pz**2), n_events)


def _pool() -> PileupPool:
    # two minimum-bias "events": a charged pion + a photon, and a lone neutron
    parts = _particles([(0, 211, 2.0, 0.5, 0.0), (0, 22, 1.0, -1.0, 1.0), (1, 2112, 3.0, 3.5, 2.0)], 2)
    return PileupPool(parts, np.array([0, 2]), np.array([2, 1]))


def test_overlay_adds_whole_rotated_pool_events_flagged_as_pileup():
    hard = _particles([(0, 11, 40.0, 0.1, 0.3), (1, 13, 30.0, -0.2, -1.0), (2, 211, 5.0, 1.0, 2.0)], 3)
    rng = np.random.default_rng(3)
    out = _pool().overlay(hard, mean=4.0, rng=rng)
    assert out.n_events == 3 and (np.diff(out.evt) >= 0).all()  # grouped by event
    assert not out.pileup[:1].any() and out.pileup.sum() == len(out.evt) - 3
    n_pu = np.random.default_rng(3).poisson(4.0, 3)
    pu_pt = np.hypot(out.px, out.py)[out.pileup]
    # every pool particle keeps its pT and eta (a rotation in azimuth only), each picked event whole
    pu_pt = np.round(pu_pt, 9)
    assert np.isin(pu_pt, [1.0, 2.0, 3.0]).all()
    assert (pu_pt == 3.0).sum() + (pu_pt == 2.0).sum() == n_pu.sum()
    assert (pu_pt == 2.0).sum() == (pu_pt == 1.0).sum()
    np.testing.assert_allclose(np.round(np.abs(np.arcsinh(out.pz / np.hypot(out.px, out.py)))[out.pileup], 9)[pu_pt == 3.0], 3.5)
    hard_rows = ~out.pileup
    np.testing.assert_allclose(out.px[hard_rows], hard.px)


def test_rho_is_the_median_cell_density():
    # one event, uniform 0.1 GeV in every central cell: rho = 0.1 / cell area; forward empty
    eta_c = np.arange(-2.25, 2.3, 0.5)
    phi_c = -np.pi + (np.arange(12) + 0.5) * np.pi / 6
    e, p = np.meshgrid(eta_c, phi_c)
    rho = median_density(np.zeros(e.size, int), np.full(e.size, 0.1), e.ravel(), p.ravel(), 1)
    assert rho[0, 1] == pytest.approx(0.1 / (0.5 * np.pi / 6)) and rho[0, 0] == rho[0, 2] == 0


def test_charged_pileup_leaves_jets_in_the_tracker_and_met_keeps_everything():
    # a muon triggers; a 30 GeV charged pile-up pion at eta 0 and a 30 GeV neutral pile-up neutron at eta 0
    # (no other pile-up, so rho is 0): only the neutral one makes a jet; MET balances both
    rows = [(0, 13, 50.0, 0.0, 0.0), (0, 211, 30.0, 0.0, 2.0), (0, 2112, 30.0, 0.5, -2.0)]
    parts = _particles(rows, 1)
    parts.pileup[:] = [False, True, True]
    cfg = DetectorConfig(pileup_mean=20.0, jet_pileup_removal="charged")
    x, passed = reconstruct(parts, np.random.default_rng(0), cfg)
    assert passed.all()
    jets = x[0, L.JETS]
    assert (jets[:, L.CLASS] == L.JET_ID).sum() == 1 and jets[0, L.PHI] == pytest.approx(-2.0, abs=1e-6)
    # the default removes all pile-up from the jets (PUPPI-like): no jet at all, the same MET
    x_all, _ = reconstruct(parts, np.random.default_rng(0), DetectorConfig(pileup_mean=20.0))
    assert (x_all[0, L.JETS, L.CLASS] == L.JET_ID).sum() == 0
    # without the pile-up flag the pion is a jet too
    parts.pileup[:] = False
    x2, _ = reconstruct(parts, np.random.default_rng(0), cfg)
    assert (x2[0, L.JETS, L.CLASS] == L.JET_ID).sum() == 2
    # MET: minus the sum of all three, muon and jet smearing aside; the pion's 30 GeV at phi 2 counts
    true = -np.array([50 + 30 * np.cos(2.0) + 30 * np.cos(-2.0), 30 * np.sin(2.0) + 30 * np.sin(-2.0)])
    assert x[0, 0, L.PT] == pytest.approx(np.hypot(*true), abs=15)
    assert x_all[0, 0, L.PT] == pytest.approx(np.hypot(*true), abs=15)


def test_a_chunk_with_pileup_is_deterministic_valid_and_has_more_met():
    from anomclr_ray.events.generation.processes import PROCESSES
    from anomclr_ray.events.generation.pythia_chunk import generate_chunk
    from anomclr_ray.events.validate import check_events

    cfg = DetectorConfig(pileup_mean=20.0, pileup_pool=100)
    a = generate_chunk(PROCESSES["z"], seed=5, chunk=1, n_accept=40, detector=cfg, batch=50)
    b = generate_chunk(PROCESSES["z"], seed=5, chunk=1, n_accept=40, detector=cfg, batch=50)
    np.testing.assert_array_equal(a.events, b.events)
    check_events(a.events, "z chunk with pile-up")
    plain = generate_chunk(PROCESSES["z"], seed=5, chunk=1, n_accept=40, detector=DetectorConfig(pileup_mean=0.0), batch=50)
    # Z -> ll has no neutrinos: its MET is resolution, and 20 pile-up interactions widen it
    assert np.median(a.events[:, 0, L.PT]) > np.median(plain.events[:, 0, L.PT]) + 5


def test_the_prefilter_never_drops_an_event_the_trigger_would_take():
    from anomclr_ray.events.generation.detector import may_trigger
    from anomclr_ray.events.generation.processes import PROCESSES
    from anomclr_ray.events.generation.pythia_chunk import make_pythia

    parts = Particles.from_pythia(make_pythia(PROCESSES["w"], 11).nextBatch(400))
    candidates = may_trigger(parts)
    _, passed = reconstruct(parts, np.random.default_rng(1), DetectorConfig(pileup_mean=0.0))
    assert passed.sum() > 100 and not (passed & ~candidates).any()
    assert candidates.sum() < len(candidates)  # it does skip events (W -> l nu with the lepton outside)
