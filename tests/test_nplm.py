"""NPLM, the signal-agnostic test: the kernel estimator against a known log density ratio, the null
statistic against a χ², seeded Poisson toys, power without and with signal, toys as Ray tasks that
resume, configs and errors, and `anomclr nplm` on the shipped data."""

import json

import numpy as np
import pytest
import torch
from scipy import stats

from anomclr_ray import configs
from anomclr_ray.cli import main
from anomclr_ray.events.dataset import DataConfig
from anomclr_ray.method.names import NPLM_POWER, NPLM_Z, nplm_key, parse_nplm_key
from anomclr_ray.nplm import (NPLMConfig, NPLMJob, Pools, Toy, ToyStore, candidate_sigma, draw, fit, likelihood_ratio,
                              make_pools, nplm_test, plan, run_toys)
from anomclr_ray.method.score import ScoreConfig


def _gaussian(n: int, shift: float = 0.0, seed: int = 0, dim: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g, dtype=torch.float64)
    x[:, 0] += shift
    return x


@pytest.mark.parametrize("shift", [0.3, 0.6])
def test_fit_learns_the_log_density_ratio_of_two_gaussians(shift):
    """Reference N(0, 1), data N(shift e_0, 1), N_D = w N_R: the fitted f tends to log p_D / p_R =
    shift x_0 − shift² / 2 in the bulk of the data, converged, and after their one Newton step for a
    small ratio; t estimates 2 N_D KL(p_D | p_R) = N_D shift²."""
    ref, data = _gaussian(20_000, seed=1), _gaussian(10_000, shift, seed=2)
    x, is_data = torch.cat([ref, data]), torch.arange(30_000) >= 20_000
    weight, sigma = 0.5, candidate_sigma(ref)
    grid = _gaussian(3000, shift / 2, seed=3)
    bulk = grid[grid.norm(dim=1) < 1.5]
    truth = shift * bulk[:, 0] - shift**2 / 2
    model, f = fit(x, is_data, weight, sigma, 200, 1e-6, 30, torch.Generator().manual_seed(0))
    assert (model(bulk) - truth).abs().mean() < 0.03 * (1 + shift)
    assert torch.allclose(model(x), f)
    t = likelihood_ratio(f, is_data, weight)
    assert abs(t - 10_000 * shift**2) < 6 * np.sqrt(2 * 10_000 * shift**2) + 20
    one, f1 = fit(x, is_data, weight, sigma, 200, 1e-6, 1, torch.Generator().manual_seed(0))
    if shift < 0.5:  # one Newton step from f = 0 solves the quadratic approximation: close for small ratios
        assert (one(bulk) - truth).abs().mean() < 0.05
    assert not torch.equal(f1, f)  # the steps beyond the first do move the fit


@pytest.fixture(scope="module")
def gaussian_study():
    """200 null toys and signal toys at f = 0 (no signal drawn) and f = 10 % of a narrow, displaced signal."""
    cfg = NPLMConfig(fractions=(0.0, 0.1), toys=100, null_toys=200, n_reference=2000, n_background=500, centres=60)
    background, signal = _gaussian(8000, seed=5), _gaussian(1000, seed=6) * 0.3 + 2.0
    return cfg, nplm_test(background, {"ato4l": signal}, cfg)


def test_the_null_statistic_follows_a_chi2(gaussian_study):
    cfg, res = gaussian_study
    assert 1 < res.dof < cfg.centres
    assert stats.kstest(res.null, "chi2", args=(res.dof,)).pvalue > 0.01
    assert abs(np.mean(res.null) - res.dof) < 4 * np.sqrt(2 * res.dof / len(res.null))


def test_power_is_the_false_positive_rate_without_signal_and_one_with_a_clear_signal(gaussian_study):
    cfg, res = gaussian_study
    # P(Z > 3) = 0.00135 under the null: at most 2 of 100 toys (binomial probability of more: 4e-4)
    assert res.power("ato4l", 0.0) <= 0.02
    assert res.power("ato4l", 0.1) == 1.0
    m = res.metrics()
    assert m[nplm_key(NPLM_POWER, "ato4l", 0.1)] == 1.0 and m[nplm_key(NPLM_Z, "ato4l", 0.1)] > 3
    assert np.median(res.z_empirical(res.signal["ato4l", 0.1])) == pytest.approx(stats.norm.isf(1 / 201))
    assert res.power_table()[0.1] == {"ato4l": 1.0, "ato4l_std": 0.0}


def test_toys_are_seeded_poisson_draws_with_disjoint_reference_and_data():
    cfg = NPLMConfig(fractions=(0.02,), toys=1, null_toys=10, n_reference=400, n_background=100)
    bkg = torch.arange(1000, dtype=torch.float64)[:, None]  # each event its own value
    sig = -1 - torch.arange(200, dtype=torch.float64)[:, None]
    pools = Pools(bkg, {"ato4l": sig}, 1.0)
    toy = Toy("ato4l", 0.02, 3)
    x1, d1, _ = draw(pools, cfg, toy)
    x2, d2, _ = draw(pools, cfg, toy)
    assert torch.equal(x1, x2) and torch.equal(d1, d2)
    assert not torch.equal(draw(pools, cfg, Toy("ato4l", 0.02, 4))[0], x1)
    assert int((~d1).sum()) == 400 and len(set(x1[:, 0].tolist())) == len(x1)  # no event twice
    counts = np.array([[int((x >= 0).sum()) - 400, int((x < 0).sum())]
                       for x, _, _ in (draw(pools, cfg, Toy("ato4l", 0.02, i)) for i in range(400))])
    for mean, column in ((100, counts[:, 0]), (2, counts[:, 1])):  # Poisson: mean = variance
        assert abs(column.mean() - mean) < 4 * np.sqrt(mean / 400)
        assert abs(column.var() / mean - 1) < 0.25


def test_metric_keys_round_trip():
    assert nplm_key(NPLM_POWER, "hc_taunu", 0.005) == "nplm_power/hc_taunu/0.005"
    assert parse_nplm_key("nplm_z/ato4l/0.01") == ("nplm_z", "ato4l", 0.01)
    assert parse_nplm_key("auc/ato4l") is None and parse_nplm_key("nplm_power/higgs/0.1") is None
    with pytest.raises(ValueError, match="signal 'higgs'"):
        nplm_key(NPLM_POWER, "higgs", 0.1)


def test_config_errors_name_the_field_and_what_is_needed():
    with pytest.raises(ValueError, match="fractions must be in"):
        NPLMConfig(fractions=(1.5,))
    with pytest.raises(ValueError, match="null_toys >= 10"):
        NPLMConfig(null_toys=3)
    with pytest.raises(ValueError, match=r"data.n_test = 20000 held-out background events, but .* 33330 are needed"):
        NPLMJob(data=DataConfig(n_test=20_000))
    with pytest.raises(ValueError, match=r"background = 100 .*"):
        nplm_test(torch.randn(100, 2), {}, NPLMConfig(n_reference=80, n_background=20))
    score = configs.override(ScoreConfig(), ["nplm.toys=7"])
    assert score.nplm == NPLMConfig(toys=7)  # a field of the optional section turns it on, with defaults
    assert configs.override(score, ["nplm=null"]).nplm is None
    assert configs.from_plain(ScoreConfig, configs.to_plain(score)) == score


def test_high_dimensional_inputs_are_warned_and_constant_columns_dropped():
    x = torch.cat([torch.randn(500, 20), torch.zeros(500, 3)], 1)
    with pytest.warns(UserWarning, match="20-dimensional"):
        pools = make_pools(x, {"ato4l": x[:10]}, NPLMConfig())
    assert pools.background.shape == (500, 20) and pools.signals["ato4l"].shape == (10, 20)
    assert abs(float(pools.background.mean())) < 1e-9


def test_a_toy_store_resumes_and_refuses_other_settings(tmp_path):
    cfg = NPLMConfig(fractions=(0.01,), toys=2, null_toys=10, n_reference=300, n_background=100, centres=20)
    pools = make_pools(_gaussian(1000), {"ato4l": _gaussian(100, 1.0)}, cfg)
    toys = plan(cfg, ["ato4l"])
    store = ToyStore(tmp_path / "toys.jsonl", {"cfg": 1})
    store.add(toys[0], 123.0)
    with (tmp_path / "toys.jsonl").open("a") as fh:
        fh.write('{"toy": "null/00')  # killed mid-write
    t = run_toys(pools, cfg, toys, ToyStore(tmp_path / "toys.jsonl", {"cfg": 1}))
    assert t[toys[0].id] == 123.0  # kept, not run again
    assert len(t) == 12 and len(ToyStore(tmp_path / "toys.jsonl", {"cfg": 1}).done) == 12
    assert run_toys(pools, cfg, toys[1:3]) == {k: t[k] for k in (toys[1].id, toys[2].id)}  # seeded: same t
    with pytest.raises(ValueError, match="other settings"):
        ToyStore(tmp_path / "toys.jsonl", {"cfg": 2})


def test_a_toy_gives_the_same_t_whichever_fractions_and_toy_counts_the_run_plans():
    small = NPLMConfig(fractions=(0.01,), toys=2, null_toys=10, n_reference=300, n_background=100, centres=20)
    more = configs.override(small, ["fractions=[0.01,0.05]", "toys=5", "null_toys=20"])
    assert small.toy_settings == more.toy_settings != configs.override(small, ["centres=30"]).toy_settings
    pools = make_pools(_gaussian(1000), {"ato4l": _gaussian(100, 1.0)}, small)
    shared = plan(small, ["ato4l"])  # a store keyed by toy_settings hands these to the larger run
    assert set(t.id for t in shared) < set(t.id for t in plan(more, ["ato4l"]))
    assert run_toys(pools, small, shared) == run_toys(pools, more, shared)


@pytest.mark.slow
def test_toys_as_ray_tasks_give_the_in_process_values(local_ray):
    cfg = NPLMConfig(fractions=(0.01,), toys=3, null_toys=10, n_reference=500, n_background=100, centres=30)
    pools = make_pools(_gaussian(2000), {"ato4l": _gaussian(200, 1.0)}, cfg)
    toys = plan(cfg, ["ato4l"])
    remote = run_toys(pools, cfg, toys, workers=2)
    # A Ray task with one CPU runs torch on one thread; the driver uses every core, and a float64 sum split
    # over threads adds in another order. Same thread count here, and a tolerance for what remains: the
    # toys' t sum a few thousand float64 terms, so reordering moves t by ~1e-15 relative (seen: last digit of
    # 22.06285550312917); 1e-12 is far above that and far below any difference between two toys' t.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        local = run_toys(pools, cfg, toys, workers=0)
    finally:
        torch.set_num_threads(threads)
    assert remote.keys() == local.keys()
    assert all(remote[k] == pytest.approx(local[k], rel=1e-12, abs=0) for k in local)
    assert len(set(local.values())) == len(local)  # the toys differ, so the comparison is not between constants


def test_cli_runs_nplm_on_raw_inputs_and_resumes(tmp_path, capsys):
    args = ["nplm", "--out", str(tmp_path), "--workers", "0", "--quiet", "--set", "nplm.toys=3", "nplm.null_toys=10",
            "nplm.n_reference=600", "nplm.n_background=200", "nplm.centres=40", "nplm.fractions=[0.01,0.05]",
            "data.n_train=2000", "data.n_test=1000", "data.n_test_signal=500"]
    with pytest.warns(UserWarning, match="dimensional"):
        assert main(args) == 0
    first = json.loads((tmp_path / "nplm.json").read_text())["ae_raw"]
    assert first["toys_run"] == 10 + 4 * 2 * 3 and 0 <= first["metrics"]["nplm_power/hc_taunu/0.05"] <= 1
    assert (tmp_path / "power.png").stat().st_size > 0 and (tmp_path / "null.png").stat().st_size > 0
    with pytest.warns(UserWarning):
        assert main(args) == 0
    again = json.loads((tmp_path / "nplm.json").read_text())["ae_raw"]
    assert again["toys_run"] == 0 and again["metrics"] == first["metrics"]
    capsys.readouterr()
    assert main([*args[:-3], "data.n_train=2000", "data.n_test=500", "data.n_test_signal=500"]) == 2
    assert "data.n_test = 500 held-out background events" in capsys.readouterr().err
