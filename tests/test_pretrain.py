import json

import numpy as np

import pytest
import torch

from anomclr_ray.cli import main
from anomclr_ray.events.preprocess import Preprocessor
from anomclr_ray import configs
from anomclr_ray.method import augment
from anomclr_ray.method.model import Encoder, ModelConfig, represent
from anomclr_ray.train import PretrainJob, TrainConfig, contrastive_step, load_checkpoint, pretrain, save_checkpoint

SMALL = ModelConfig(model_dim=16, heads=2, layers=1, feedforward_dim=16, output_dim=16)
CPU = torch.device("cpu")


@pytest.mark.parametrize("kwargs, message", [
    ({"loss": "byol"}, "unknown loss 'byol'"),
    ({"mix": "bogus"}, "unknown augmentation mix 'bogus'"),
    ({"temperature": 0.0}, "temperature must be > 0"),
    ({"learning_rate": -1.0}, "learning_rate must be > 0"),
    ({"precision": "fp8"}, "precision: unknown 'fp8'"),
])
def test_bad_train_config_fails_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_batch_larger_than_data_fails_before_training(background_sample):
    pre = Preprocessor.fit(background_sample)
    with pytest.raises(ValueError, match=r"batch_size \(4096\) is larger than the 100 training events"):
        pretrain(background_sample[:100], pre, SMALL, TrainConfig(batch_size=4096), CPU, log=None)


@pytest.mark.parametrize("loss", ["clr", "anomclr", "anomclr_plus"])
def test_training_is_seeded_and_lowers_the_loss(background_sample, loss):
    pre = Preprocessor.fit(background_sample)
    cfg = TrainConfig(loss=loss, epochs=3, batch_size=128, learning_rate=1e-3, seed=3)
    m1, h1 = pretrain(background_sample[:1024], pre, SMALL, cfg, CPU, log=None)
    m2, h2 = pretrain(background_sample[:1024], pre, SMALL, cfg, CPU, log=None)
    assert h1 == h2
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        torch.testing.assert_close(a, b)
    assert h1[-1] < h1[0]


def test_nan_loss_names_epoch_and_batch(background_sample, monkeypatch):
    pre = Preprocessor.fit(background_sample)
    import anomclr_ray.train.loop as P  # where the step looks the loss up

    calls = {"n": 0}
    real = P.contrastive_loss

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(P, "contrastive_loss", poisoned)
    with pytest.raises(FloatingPointError, match="loss is nan at epoch 1 batch 0"):
        pretrain(background_sample[:256], pre, SMALL, TrainConfig(epochs=3, batch_size=128), CPU, log=None)


def test_checkpoint_roundtrip_gives_the_same_representation(tmp_path, background_sample):
    pre = Preprocessor.fit(background_sample)
    model, hist = pretrain(background_sample[:256], pre, SMALL, TrainConfig(epochs=1, batch_size=128), CPU, log=None)
    save_checkpoint(tmp_path / "c.pt", model, pre, TrainConfig(epochs=1, batch_size=128), hist)
    model2, pre2, cfg2 = load_checkpoint(tmp_path / "c.pt", CPU)
    assert pre2 == pre and cfg2.batch_size == 128
    torch.testing.assert_close(represent(model2, pre2, background_sample[:50], CPU),
                               represent(model, pre, background_sample[:50], CPU))


def test_cli_pretrain_then_score_writes_metrics_plots_and_configs_that_run_again(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["pretrain", "--out", str(run), "--set", "data.n_train=600", "train.epochs=1", "train.batch_size=128",
                 "model.model_dim=16", "model.heads=2", "model.layers=1", "train.loss=anomclr"]) == 0
    job = configs.load(PretrainJob, run / "config.yaml")
    assert (job.data.n_train, job.train.loss, job.model.model_dim, job.train.learning_rate) == (600, "anomclr", 16, 5e-5)
    assert load_checkpoint(run / "checkpoint.pt", CPU)[2] == job.train
    out = tmp_path / "score"
    assert main(["score", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(out), "--set", "data.n_train=600",
                 "data.n_test=400", "data.n_test_signal=200", "score.epochs=2", "ae_seeds=[0,1]",
                 "score.batch_size=128"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"ae_raw", "anomclr"}
    for method in metrics.values():
        assert set(method) == {"ato4l", "leptoquark", "h_tautau", "hc_taunu"}
        assert all(0.0 <= m["auc"] <= 1.0 and m["auc_std"] >= 0 for m in method.values())
    assert (out / "roc.png").stat().st_size > 10_000 and (out / "si.png").stat().st_size > 10_000
    assert "| AnomCLR |" in (out / "table.md").read_text()
    signal_free = json.loads((out / "signal_free.json").read_text())  # background against its augmented views
    assert set(signal_free) == set(metrics) and all(len(m) == 8 and 0 <= m["proxy_auc/all"] <= 1
                                                    for m in signal_free.values())
    # the written config runs the same scoring again: the same metrics, seed for seed
    again = tmp_path / "again"
    assert main(["score", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(again),
                 "--config", str(out / "config.yaml")]) == 0
    assert json.loads((again / "metrics.json").read_text()) == metrics
    capsys.readouterr()
    assert main(["pretrain", "--out", str(run), "--set", "data.n_train=100", "train.batch_size=256"]) == 2
    assert "TrainConfig.batch_size (256) is larger than the 100 training events" in capsys.readouterr().err
    assert main(["score", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(out), "--set", "score.bottleneck=16"]) == 2
    assert "bottleneck (16) must be smaller than the input dimension (16)" in capsys.readouterr().err
    assert main(["score", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(tmp_path / "no"), "--set", "data.n_train=1000"]) == 2
    assert "ScoreConfig.batch_size (4096) is larger than the 800 training events of the AE" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()  # refused before reading events or training
    assert main(["pretrain", "--out", str(run), "--set", "train.epoch=3"]) == 2
    assert "unknown key 'train.epoch': TrainConfig (train) has loss, temperature" in capsys.readouterr().err


@pytest.mark.parametrize("loss", ["clr", "anomclr_plus"])
def test_bf16_autocast_runs_the_encoder_in_bf16_and_the_loss_in_float32(background_sample, loss):
    pre = Preprocessor.fit(background_sample)
    x = torch.as_tensor(background_sample[:128])
    g = torch.Generator().manual_seed(0)
    views = [x, augment.physical(x, g), augment.anomalous(x, "all", g)]
    torch.manual_seed(0)
    model = Encoder(SMALL)
    f32 = contrastive_step(model, pre, views, TrainConfig(loss=loss))
    bf16 = contrastive_step(model, pre, views, TrainConfig(loss=loss, precision="bf16"))
    assert f32.dtype == bf16.dtype == torch.float32
    assert float(bf16) != float(f32)  # the encoder really ran in bfloat16 ...
    assert float(bf16) == pytest.approx(float(f32), rel=0.02, abs=0.05)  # ... and agrees to its precision
    bf16.backward()
    assert all(torch.isfinite(p.grad).all() and p.grad.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize("loss", ["simclr", "supcon", "vicreg"])
def test_the_companion_losses_train_on_two_augmented_views(background_sample, loss):
    from anomclr_ray.train import make_views

    x = torch.as_tensor(background_sample[:64])
    cfg = TrainConfig(loss=loss, epochs=2, batch_size=32)
    first, second = make_views(x, cfg, torch.Generator().manual_seed(0))
    assert not torch.equal(first, x) and not torch.equal(first, second)  # two independent augmentations
    labels = np.arange(256) % 4
    pre = Preprocessor.fit(background_sample)
    model, history = pretrain(background_sample[:256], pre, SMALL, cfg, CPU, log=None, labels=labels)
    assert len(history) == 2 and all(np.isfinite(history))


def test_supcon_without_labels_is_refused_before_any_training(tmp_path, capsys):
    import shutil

    import h5py

    from anomclr_ray.events import layout as L
    from conftest import DEFAULT_DATA

    shutil.copytree(DEFAULT_DATA, tmp_path / "data", ignore=shutil.ignore_patterns("*.png", "*.md"))
    with h5py.File(tmp_path / "data" / L.FILE_NAMES[L.BACKGROUND], "r+") as f:
        del f[L.LABELS_KEY]  # as in the published ADC2021 files
    assert main(["pretrain", "--out", str(tmp_path / "run"), "--data-dir", str(tmp_path / "data"),
                 "--set", "train.loss=supcon", "data.n_train=600"]) == 2
    err = capsys.readouterr().err
    assert "background_for_training.h5" in err and "no 'process_label' dataset, but train.loss supcon needs" in err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_an_mlp_embedding_pretrains_and_its_checkpoint_gives_the_same_embedding(tmp_path, background_sample):
    cfg = ModelConfig(kind="mlp", embedding_dim=4, output_dim=16)
    pre = Preprocessor.fit(background_sample)
    train = TrainConfig(loss="simclr", temperature=0.9, epochs=1, batch_size=128)
    model, hist = pretrain(background_sample[:256], pre, cfg, train, CPU, log=None)
    save_checkpoint(tmp_path / "c.pt", model, pre, train, hist)
    again, pre2, _ = load_checkpoint(tmp_path / "c.pt", CPU)
    emb = represent(model, pre, background_sample[:50], CPU)
    assert emb.shape == (50, 4)
    torch.testing.assert_close(represent(again, pre2, background_sample[:50], CPU), emb)


def test_masking_and_pt_resampling_compose_into_the_physical_view_only_when_asked(background_sample):
    from anomclr_ray.method import augment
    from anomclr_ray.events.validate import check_events
    from anomclr_ray.train import physical_view

    x = torch.as_tensor(background_sample[:500])
    plain = physical_view(x, TrainConfig(), torch.Generator().manual_seed(3))
    assert torch.equal(plain, augment.physical(x, torch.Generator().manual_seed(3)))  # the defaults change nothing
    both = physical_view(x, TrainConfig(mask_probability=0.5, pt_resampling=0.2), torch.Generator().manual_seed(3))
    assert (both[:, 1:, 3] != 0).sum() < (plain[:, 1:, 3] != 0).sum()  # objects were masked
    check_events(both.numpy(), "masked and resampled view")
    with pytest.raises(ValueError, match="mask_probability in \\[0, 1\\)"):
        TrainConfig(mask_probability=1.0)
