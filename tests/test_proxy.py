"""The signal-free metrics (held-out background against its anomaly-augmented views), a study that
optimises them, and the report's account of how well they rank trials."""

import dataclasses

import numpy as np
import pytest
import torch
from conftest import AUC_EXAMPLE as AUC
from conftest import log_synthetic_study

from anomclr_ray.method.augment import mixes
from anomclr_ray.method.evaluate import evaluate, evaluate_splits, proxy_views, raw_inputs
from anomclr_ray.events.dataset import DataConfig, load_dataset, with_validation
from anomclr_ray.events.preprocess import Preprocessor
from anomclr_ray.events.validate import check_events
from anomclr_ray.method.names import check_objective, objective_keys, parse_proxy_key, proxy_key
from anomclr_ray.report.build import build_report, rank_agreement
from anomclr_ray.method.score import ScoreConfig
from anomclr_ray.study import StudyConfig

AE = ScoreConfig(bottleneck=2, hidden=(8,), epochs=3, batch_size=128)


def test_proxy_auc_is_one_half_on_identical_views_and_near_one_on_separable_ones():
    g = torch.Generator().manual_seed(0)
    train, bkg, held_out = (torch.randn(n, 6, generator=g) for n in (2000, 500, 800))
    views = {"all": held_out.clone(), "ao": held_out + 20.0}  # the same events; trivially separable ones
    ev = evaluate(train, bkg, {"ato4l": bkg + 1}, AE, seeds=(0, 1), proxy=(held_out, views))
    flat = ev.flat_metrics()
    assert flat["proxy_auc/all"] == 0.5  # every score tied with its own view: ties count one half
    assert flat["proxy_auc/ao"] > 0.99 and flat["proxy_si/ao"] > flat["proxy_si/all"]
    assert {k for k in flat if parse_proxy_key(k)} == {"proxy_auc/all", "proxy_si/all", "proxy_auc/ao", "proxy_si/ao"}
    assert "proxy_auc/all" not in evaluate(train, bkg, {"ato4l": bkg + 1}, AE).flat_metrics()


def test_proxy_views_are_valid_events_drawn_the_same_for_every_call(default_data):
    events = load_dataset(DataConfig(n_train=10, n_test=500, n_test_signal=10)).test_background
    views = proxy_views(events)
    assert list(views) == list(mixes()) == ["ao", "cs", "shift", "all"]
    for mix, x in views.items():
        check_events(x, f"proxy view {mix}")  # valid events that still fire the trigger
        changed = (x != events).any(axis=(1, 2)).mean()
        assert changed > 0.5, (mix, changed)
        np.testing.assert_array_equal(x, proxy_views(events)[mix])  # fixed generator: trials compare
    assert not np.array_equal(views["ao"], proxy_views(events, seed=1)["ao"])


def test_every_evaluation_logs_the_proxy_metrics_on_the_validation_background(default_data):
    data = load_dataset(with_validation(DataConfig(n_train=1500, n_test=1200, n_test_signal=400), 0.25))
    embed = lambda x: raw_inputs(Preprocessor.fit(data.train), x)  # noqa: E731 - AE-Raw's inputs
    flat = evaluate_splits(embed, data, AE, seeds=(0,)).flat_metrics()
    keys = {proxy_key(n, m) for n in ("proxy_auc", "proxy_si") for m in mixes()}
    assert keys <= set(flat) and all(np.isfinite(flat[k]) for k in keys)
    assert all(0 <= flat[f"proxy_auc/{m}"] <= 1 for m in mixes())
    other = dataclasses.replace(data, val_background=data.test_background[:300])  # the proxy reads the validation split
    assert evaluate_splits(embed, other, AE, seeds=(0,)).flat_metrics()["proxy_auc/all"] != flat["proxy_auc/all"]


def test_a_study_can_optimise_a_signal_free_metric_and_a_misspelled_one_is_refused():
    assert check_objective("proxy_auc/all") == "proxy_auc/all" and check_objective("auc/mean") == "auc/mean"
    assert {"proxy_auc/cs", "proxy_si/shift"} <= objective_keys(("ato4l",), validation=False)
    study = StudyConfig("s", {"train.mix": {"grid": ["ao"]}}, metric="proxy_si/shift")
    assert study.metric == "proxy_si/shift"
    with pytest.raises(ValueError, match=r"'proxy_auc/xyz' is not a metric key.*or a signal-free metric.*proxy_auc/all"):
        StudyConfig("s", {"train.mix": {"grid": ["ao"]}}, metric="proxy_auc/xyz")
    with pytest.raises(ValueError, match="the mix must be one of ao, cs, shift, all"):
        proxy_key("proxy_auc", "add")


def test_rank_agreement_is_the_rank_correlation_and_the_regret_of_the_chosen_trial():
    target = np.array([0.70, 0.80, 0.75, 0.90])
    assert rank_agreement(target * 2, target) == (1.0, 0.0)
    rho, regret = rank_agreement(-target, target)
    assert rho == -1.0 and regret == pytest.approx(0.2)  # it chooses the worst
    rho, regret = rank_agreement(np.array([1.0, 1.0, 1.0, 1.0]), target)
    assert np.isnan(rho) and regret == pytest.approx(0.2)  # a constant objective takes the first trial


def test_the_report_ranks_the_trials_by_each_objective(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    quality = [0.0, 0.02, 0.04, 0.06, 0.08]
    trials = [{"params": {"method": m, "train": {"temperature": 0.1 + q, "mix": mix, "learning_rate": 1e-4 * (1 + q)}},
               "auc": {s: a + q for s, a in AUC.items()},
               "metrics": {"proxy_auc/all": 0.6 + q, "proxy_si/all": 3 - 10 * q,  # one ranks well, one badly
                           **{proxy_key(n, x): 0.5 for n in ("proxy_auc", "proxy_si") for x in ("ao", "cs", "shift")},
                           "proxy_si/ao": np.finfo(float).max}}  # as an infinite SI is logged
              for q, m, mix in zip(quality, ["clr", "anomclr", "anomclr_plus"] * 2, ["ao", "cs", "all"] * 2)]
    log_synthetic_study(uri, "search", trials, tmp_path)
    md = build_report(uri, "search", tmp_path / "rep", metric="proxy_auc/all").read_text()
    section = md.split("## Choosing without signal labels")[1].split("\n## ")[0]
    rows = {line.split(" | ")[0].strip("|* "): line for line in section.splitlines() if line.startswith("| proxy")
            or line.startswith("| **")}
    assert rows["proxy_auc/all"].count("+1.00 / 0.000") == 5  # four signals and the mean
    assert rows["proxy_si/all"].count("-1.00 / 0.080") == 5
    assert rows["proxy_auc/cs"].count("| —") == 5 and rows["proxy_si/ao"].count("| —") == 5  # constant: no choice
    assert "`proxy_si/ao` = ∞" in section and "`proxy_auc/cs` = 0.5" in section
    assert "![ranking by proxy_auc/all](ranking.png)" in section
    assert (tmp_path / "rep" / "ranking.png").stat().st_size > 20_000
