"""Train / test / validation splits of the shipped data: disjoint, the sizes asked for, checked early."""

import numpy as np
import pytest
import torch

from anomclr_ray.method.evaluate import evaluate, evaluate_splits
from anomclr_ray.events import layout as L
from anomclr_ray.events.dataset import DataConfig, load_dataset, with_validation
from anomclr_ray.events.io import EventFile
from anomclr_ray.method.score import ScoreConfig


def test_validation_events_follow_the_test_events_and_are_disjoint(default_data):
    cfg = with_validation(DataConfig(n_train=3000, n_test=2000, n_test_signal=400), fraction=0.25)
    assert (cfg.n_test, cfg.n_val, cfg.n_test_signal, cfg.n_val_signal) == (1500, 500, 300, 100)
    data = load_dataset(cfg)
    with EventFile(default_data / L.FILE_NAMES[L.BACKGROUND]) as f:
        np.testing.assert_array_equal(data.val_background, f.read(4500, 5000))
        np.testing.assert_array_equal(data.test_background, f.read(3000, 4500))
    with EventFile(default_data / L.FILE_NAMES["ato4l"]) as f:
        np.testing.assert_array_equal(data.val_signals["ato4l"], f.read(300, 400))
    assert set(data.val_signals) == set(L.SIGNALS) and all(len(v) == 100 for v in data.val_signals.values())
    assert load_dataset(DataConfig(n_train=10, n_test=10, n_test_signal=10)).val_background is None


def test_ae_events_follow_the_encoders_and_the_ae_and_probe_train_on_them(default_data):
    cfg = DataConfig(n_train=600, n_ae=400, n_test=500, n_test_signal=300)
    data = load_dataset(cfg)
    with EventFile(default_data / L.FILE_NAMES[L.BACKGROUND]) as f:
        np.testing.assert_array_equal(data.train, f.read(0, 600))
        np.testing.assert_array_equal(data.ae_events[0], f.read(600, 1000))
        np.testing.assert_array_equal(data.ae_events[1], f.labels(600, 1000))
        np.testing.assert_array_equal(data.test_background, f.read(1000, 1500))
    assert cfg.n_ae_train == 400
    shared = load_dataset(DataConfig(n_train=600, n_test=500, n_test_signal=300))
    assert shared.ae_events[0] is shared.train and DataConfig(n_train=600).n_ae_train == 600

    seen = []  # the lengths of the event sets embedded: the encoder's 600 are never among them
    ev = evaluate_splits(lambda x: seen.append(len(x)) or torch.as_tensor(x[:, :, 0], dtype=torch.float32),
                         data, ScoreConfig(bottleneck=2, hidden=(8,), epochs=1, batch_size=64), seeds=(0,))
    assert 400 in seen and 600 not in seen and ev.probe_accuracy is not None
    with pytest.raises(ValueError, match="n_ae >= 0"):
        DataConfig(n_ae=-1)


def test_validation_configs_that_cannot_work_are_refused(default_data):
    with pytest.raises(ValueError, match="validation set needs both n_val and n_val_signal"):
        DataConfig(n_val=100)
    with EventFile(default_data / L.FILE_NAMES["ato4l"]) as f:
        n = len(f)  # every signal file holds as many: test + validation ask for one more
    with pytest.raises(ValueError, match=rf"holds {n} events, the data config needs {n + 1}"):
        load_dataset(DataConfig(n_train=10, n_test=10, n_test_signal=n - 1000, n_val=10, n_val_signal=1001))


def test_validation_metrics_come_from_the_same_autoencoders_and_leave_test_metrics_alone():
    g = torch.Generator().manual_seed(0)
    train, bkg, val_bkg = (torch.randn(n, 6, generator=g) for n in (2000, 500, 500))
    signals = {"ato4l": 1 + torch.randn(200, 6, generator=g)}
    val_signals = {"ato4l": 0.1 + torch.randn(200, 6, generator=g)}  # hardly anomalous
    cfg = ScoreConfig(bottleneck=2, hidden=(8,), epochs=3, batch_size=128)
    plain = evaluate(train, bkg, signals, cfg, seeds=(0, 1))
    both = evaluate(train, bkg, signals, cfg, seeds=(0, 1), validation=(val_bkg, val_signals))
    np.testing.assert_equal(both.metrics, plain.metrics)  # NaN-aware (the ADC metric needs more events)
    assert not plain.validation
    flat = both.flat_metrics()
    assert flat["auc/ato4l"] == plain.flat_metrics()["auc/ato4l"] > 0.75
    assert 0.4 < flat["val_auc/ato4l"] < 0.7 and flat["val_auc/mean"] == flat["val_auc/ato4l"]
