"""Extension points are one entry in one place: a metric added to `metrics.SIGNAL_METRICS` here, in a
test module, reaches a trial's metrics, its MLflow run, the report's tables and its figures; an anomaly
added to `augment.ANOMALIES` becomes a mix that pretraining takes and a signal-free metric; a loss added
to `losses.LOSSES` trains, is a study method with its label and colour, and says when it needs labels."""

import torch

from anomclr_ray.method import augment, losses
from anomclr_ray.method.evaluate import evaluate, evaluate_splits, raw_inputs
from anomclr_ray.events import layout as L
from anomclr_ray.events.dataset import DataConfig, load_dataset
from anomclr_ray.events.preprocess import Preprocessor
from anomclr_ray.method.metrics import SignalMetric, auc
from anomclr_ray.method.names import labels_needed, method, metric_key, parse_metric_key
from anomclr_ray.report.build import build_report, read_trials
from anomclr_ray.method.model import ModelConfig
from anomclr_ray.train import TrainConfig, pretrain
from anomclr_ray.method.score import ScoreConfig
from anomclr_ray.report.tracking import experiment_id, log_trial, start_parent_run

TOY = SignalMetric(lambda curve, eps_s, _n: 10 * auc(curve), "toy", "toy score at {eps_s}", "toy at ε_S = {eps_s}",
                   mean=True)


def test_a_metric_added_in_one_place_reaches_the_run_the_report_and_its_figures(tmp_path, monkeypatch):
    from anomclr_ray.method import metrics

    monkeypatch.setitem(metrics.SIGNAL_METRICS, "toy", TOY)
    assert parse_metric_key("val_toy/mean").name == "toy"  # the key grammar knows it
    g = torch.Generator().manual_seed(0)
    train, bkg = torch.randn(1000, 4, generator=g), torch.randn(300, 4, generator=g)
    signals = {"ato4l": 2 + torch.randn(200, 4, generator=g), "hc_taunu": torch.randn(200, 4, generator=g)}
    flat = evaluate(train, bkg, signals, ScoreConfig(bottleneck=2, hidden=(8,), epochs=2, batch_size=100),
                    eps_s=0.2).flat_metrics()
    assert flat["toy/ato4l"] == 10 * flat["auc/ato4l"] and flat["toy/mean"] == 10 * flat["auc/mean"]

    uri = f"sqlite:///{tmp_path}/mlruns.db"
    exp = experiment_id(uri, "toy", (tmp_path / "mlartifacts").as_uri())
    parent = start_parent_run(uri, exp, "toy", {"name": "toy"})
    for i, mix in enumerate(("ao", "cs")):  # a two-value ablation: bars per mix
        shifted = {k: v + 0.01 * i for k, v in flat.items()}  # NaN (eps_S at 1e-5 on few events) too
        log_trial(uri, exp, parent, f"t{i}", f"trial {i}", {"method": "anomclr_plus", "eps_s": 0.2,
                                                             "train": {"mix": mix, "epochs": 2}},
                  {**shifted, "epoch": 2}, 2, {}, [], finished=True)
    assert all(metric_key("toy", "ato4l") in t.metrics for t in read_trials(uri, "toy"))
    md = build_report(uri, "toy", tmp_path / "rep").read_text()
    assert "toy at ε_S = 0.2" in md and "| toy mean |" in md  # its table (at the eps_s used) and its column
    assert "SI at ε_S = 0.2" in md and "ε_S = 0.3" not in md  # labels come from the value used
    import matplotlib.pyplot as plt

    bars = plt.imread(tmp_path / "rep" / "by_train.mix.png")
    assert bars.shape[0] == round(3 * 3.2 * 110)  # a row of bars per averaged metric: AUC, SI and the toy


def _double_met(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A toy anomaly: twice the MET (MET has no threshold, so the event stays valid)."""
    y = x.clone()
    y[:, 0, L.PT] *= 2
    return y


def test_an_anomaly_added_in_one_place_is_a_mix_pretraining_takes_and_a_signal_free_metric(default_data, monkeypatch):
    monkeypatch.setitem(augment.ANOMALIES, "met2", _double_met)
    assert augment.mixes() == ("ao", "cs", "shift", "met2", "all") and augment.parse_mix("all")[-1] == "met2"
    data = load_dataset(DataConfig(n_train=256, n_test=300, n_test_signal=100))
    cfg = TrainConfig(loss="anomclr_plus", mix="met2", epochs=1, batch_size=128)
    model = ModelConfig(model_dim=16, heads=2, layers=1, feedforward_dim=16, output_dim=16)
    _, history = pretrain(data.train, Preprocessor.fit(data.train), model, cfg, torch.device("cpu"), log=None)
    assert len(history) == 1 and torch.isfinite(torch.tensor(history)).all()
    pre = Preprocessor.fit(data.train)
    flat = evaluate_splits(lambda x: raw_inputs(pre, x), data,
                           ScoreConfig(bottleneck=2, hidden=(8,), epochs=2, batch_size=64)).flat_metrics()
    assert 0.5 < flat["proxy_auc/met2"] <= 1 and "proxy_si/met2" in flat  # MET doubled: an AE on raw inputs sees it


def _alignment(h, h2, _h_anom, temperature, _shard, _labels, _weights):
    """A toy loss: the mean cosine distance of the two views (no negatives)."""
    return (1 - torch.nn.functional.cosine_similarity(h, h2)).mean() / temperature


def test_a_loss_added_in_one_place_trains_and_is_a_named_coloured_method(default_data, monkeypatch, tmp_path):
    monkeypatch.setitem(losses.LOSSES, "align", losses.Loss(_alignment, losses.TWO_VIEWS, "Align", "#17becf",
                                                            labels=True))
    assert (method("align").label, method("align").color, method("align").contrastive) == ("Align", "#17becf", True)
    assert labels_needed("align") == "train.loss align"  # a data set without process labels is refused for it
    data = load_dataset(DataConfig(n_train=256, n_test=10, n_test_signal=10))
    cfg = TrainConfig(loss="align", epochs=2, batch_size=128, learning_rate=1e-3)
    model = ModelConfig(model_dim=16, heads=2, layers=1, feedforward_dim=16, output_dim=16)
    _, history = pretrain(data.train, Preprocessor.fit(data.train), model, cfg, torch.device("cpu"), log=None)
    assert len(history) == 2 and history[1] < history[0]  # it trains

    uri = f"sqlite:///{tmp_path}/mlruns.db"
    exp = experiment_id(uri, "align", (tmp_path / "mlartifacts").as_uri())
    parent = start_parent_run(uri, exp, "align", {"name": "align"})
    for i, name in enumerate(("ae_raw", "align")):
        log_trial(uri, exp, parent, f"t{i}", name, {"method": name, "train": {"epochs": 2}},
                  {"epoch": 2, **{metric_key(m, s): 0.6 + 0.1 * i for m in ("auc", "si", "eb_at_es") for s in ("ato4l",)},
                   **{metric_key(m, s, std=True): 0.0 for m in ("auc", "si", "eb_at_es") for s in ("ato4l",)}},
                  2, {}, [], finished=True)
    assert "| Align |" in build_report(uri, "align", tmp_path / "rep").read_text()  # the per-method table
