"""Augmentations: every output is a valid event, and each keeps its physics invariants."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from anomclr_ray.method import augment as A
from anomclr_ray.events import layout as L
from anomclr_ray.events.kinematics import wrap_phi
from anomclr_ray.events.validate import check_events

ALL = {"rotate_phi": A.rotate_phi, "smear_eta_phi": A.smear_eta_phi, "smear_jet_pt": A.smear_jet_pt,
       "physical": A.physical, "ao": A.add_objects, "cs": A.collinear_split, "shift": A.shift,
       "mask": lambda x, generator: A.mask_objects(x, 0.5, generator),
       "resample_pt": lambda x, generator: A.resample_pt(x, 2.0, generator)}


@pytest.fixture(scope="module")
def events(background_sample):
    return torch.as_tensor(background_sample[:1000])


def _gen(seed):
    return torch.Generator().manual_seed(seed)


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), name=st.sampled_from(sorted(ALL)))
def test_every_output_is_a_valid_selected_event(events, seed, name):
    y = ALL[name](events, generator=_gen(seed))
    assert y.shape == events.shape and y.dtype == events.dtype
    check_events(y.numpy(), name)  # classes, zero padding, order, phi range, cuts, trigger, no NaN


@pytest.mark.parametrize("mix", ["ao", "cs", "shift", "all", "ao+shift"])
def test_anomalous_mixes_are_valid_and_seeded(events, mix):
    a = A.anomalous(events, mix, _gen(1))
    check_events(a.numpy(), mix)
    torch.testing.assert_close(a, A.anomalous(events, mix, _gen(1)))
    assert not torch.equal(a, A.anomalous(events, mix, _gen(2)))


def test_unknown_mix_is_named():
    with pytest.raises(ValueError, match=r"unknown augmentation mix 'ao\+xx'"):
        A.parse_mix("ao+xx")


def test_rotation_keeps_pt_eta_and_relative_phi(events):
    y = A.rotate_phi(events, _gen(3))
    torch.testing.assert_close(y[..., [L.PT, L.ETA, L.CLASS]], events[..., [L.PT, L.ETA, L.CLASS]])
    filled = events[..., L.CLASS] > 0
    d_before = wrap_phi(events[..., L.PHI] - events[:, :1, L.PHI])
    d_after = wrap_phi(y[..., L.PHI] - y[:, :1, L.PHI])
    diff = wrap_phi(d_after - d_before)[filled]
    assert diff.abs().max() < 1e-4


def test_split_keeps_sum_pt_per_type_and_met(events):
    y = A.collinear_split(events, _gen(4))
    torch.testing.assert_close(y[:, 0], events[:, 0])
    for t in A.TYPES:
        torch.testing.assert_close(y[:, t.slots, L.PT].sum(1), events[:, t.slots, L.PT].sum(1), rtol=1e-5, atol=1e-3)
    n = lambda x: (x[:, L.OBJECTS, L.CLASS] > 0).sum(1)  # noqa: E731
    assert (n(y) >= n(events)).all() and (n(y) > n(events)).float().mean() > 0.8


def test_add_keeps_the_original_objects_and_balances_met(events):
    y = A.add_objects(events, _gen(5))
    for t in A.TYPES:
        old, new = events[:, t.slots], y[:, t.slots]
        old_filled = old[..., L.CLASS] > 0
        # every original object appears unchanged among the new event's objects of its type
        match = (old[:, :, None, :3] == new[:, None, :, :3]).all(-1).any(-1)
        assert (match | ~old_filled).all()
    n = lambda x: (x[:, L.OBJECTS, L.CLASS] > 0).sum(1)  # noqa: E731
    assert (n(y) > n(events)).float().mean() > 0.95
    # MET vector changes by minus the added objects' pT sum (before their small smearing, so approx.)
    def vec(x):
        px = (x[:, L.OBJECTS, L.PT] * torch.cos(x[:, L.OBJECTS, L.PHI])).sum(1)
        py = (x[:, L.OBJECTS, L.PT] * torch.sin(x[:, L.OBJECTS, L.PHI])).sum(1)
        met = x[:, 0, L.PT]
        return px + met * torch.cos(x[:, 0, L.PHI]), py + met * torch.sin(x[:, 0, L.PHI])
    bx, by = vec(events)
    ax, ay = vec(y)
    shift = torch.hypot(ax - bx, ay - by)  # only the eta/phi smearing of soft added objects moves it
    assert float(shift.max()) < 10.0 and float(shift.median()) < 1.0


def test_shift_follows_the_published_modes_and_ranges(events):
    """MET alone x U[0.5, 5), objects alone x U[1, 5), or both x one U[1, 5) factor; a third each."""
    big = events.repeat(10, 1, 1)
    y = A.shift(big, _gen(6))
    ratio = torch.where(big[..., L.PT] > 0, y[..., L.PT] / big[..., L.PT].clamp(min=1e-9), torch.full((), float("nan")))
    met_r, obj_r = ratio[:, 0], ratio[:, L.OBJECTS].nanmean(1)
    objects = ratio[:, L.OBJECTS]
    spread = objects.nan_to_num(-1.0).amax(1) - objects.nan_to_num(10.0).amin(1)
    assert float(spread.max()) < 1e-4 * float(obj_r.max())  # one factor for all objects of an event
    obj_only = torch.isclose(met_r, torch.ones(())) & ~torch.isclose(obj_r, torch.ones(()))
    met_only = torch.isclose(obj_r, torch.ones(())) & ~torch.isclose(met_r, torch.ones(()))
    both = torch.isclose(met_r, obj_r, rtol=1e-4) & ~torch.isclose(met_r, torch.ones(()))
    for mode in (obj_only, met_only, both):
        assert abs(float(mode.float().mean()) - 1 / 3) < 0.03
    assert float((obj_only | met_only | both).float().mean()) > 0.999
    lo, hi = float(met_r[met_only].min()), float(met_r[met_only].max())
    assert 0.5 <= lo < 0.55 and 4.95 < hi < 5.0  # MET alone can also shrink
    assert (met_r[met_only] < 1).float().mean() > 0.05
    for r in (obj_r[obj_only], met_r[both]):
        assert 1.0 <= float(r.min()) < 1.05 and 4.95 < float(r.max()) < 5.0
    check_events(y.numpy(), "shift")  # object factors >= 1 keep every threshold and the trigger


def test_jet_smearing_width_follows_the_resolution(events):
    big = events.repeat(20, 1, 1)
    y = A.smear_jet_pt(big, _gen(7), strength=1.0)
    lead_before, lead_after = big[:, L.JETS.start, L.PT], y[:, L.JETS.start, L.PT]
    sel = lead_before > 100
    rel = ((lead_after - lead_before) / lead_before)[sel]
    expected = float(np.sqrt(0.052 + 1.502 / lead_before[sel].numpy()).mean())
    assert 0.5 * expected < float(rel.std()) < 1.5 * expected


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_runs_on_the_events_device(events):
    x = events.cuda()
    y = A.anomalous(A.physical(x, torch.Generator("cuda").manual_seed(0)), "all", torch.Generator("cuda").manual_seed(1))
    assert y.is_cuda
    check_events(y.cpu().numpy(), "cuda")


def test_masking_drops_objects_at_its_rate_and_resampling_spreads_pt_as_asked(events):
    masked = A.mask_objects(events, 0.3, _gen(0))
    drop = torch.rand(events.shape[:2], generator=_gen(0)) < 0.3  # the draw mask_objects makes first
    filled = events[..., L.CLASS] != 0
    drop &= filled
    drop[:, 0] = False
    trigger = torch.zeros_like(filled)
    trigger[:, L.LEPTONS] = filled[:, L.LEPTONS] & (events[:, L.LEPTONS, L.PT] >= L.TRIGGER_PT)
    kept = (trigger & ~drop).any(1)  # events that keep a trigger lepton: exactly the undropped objects remain
    count = (masked[:, L.OBJECTS, L.CLASS] != 0).sum(1)
    assert torch.equal(count[kept], (filled & ~drop)[kept][:, 1:].sum(1))
    assert torch.equal(masked[~kept], events[~kept])  # the others keep everything
    assert 0.6 < float((filled & ~drop)[:, 1:].sum() / filled[:, 1:].sum()) < 0.8
    assert torch.equal(masked[:, 0], events[:, 0])  # the MET is never masked
    assert torch.equal(A.mask_objects(events, 0.0, _gen(0)), events)
    # leading jets (>= 30 GeV, ten standard deviations from where the modulus acts): pT'/pT - 1 has the
    # std asked for, measured on every event with a jet (a few hundred; the calibrated background has few hard jets)
    big = events[:, L.JETS.start, L.PT] > 30
    ratio = A.resample_pt(events, 0.1, _gen(1))[big, L.JETS.start, L.PT] / events[big, L.JETS.start, L.PT]
    assert abs(float(ratio.std()) - 0.1) < 0.03
    torch.testing.assert_close(A.resample_pt(events, 0.0, _gen(1)), events)
