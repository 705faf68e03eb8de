import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from anomclr_ray.method.metrics import auc, eps_b_at, roc, signal_metrics
from anomclr_ray.method.score import AutoEncoder, ScoreConfig, fit_autoencoder


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_matches_scikit_learn_including_ties(seed):
    rng = np.random.default_rng(seed)
    bkg = np.round(rng.normal(0, 1, 3000), 1)  # rounded: many ties
    sig = np.round(rng.normal(0.7, 1.2, 500), 1)
    y = np.r_[np.zeros(len(bkg)), np.ones(len(sig))]
    assert auc(roc(bkg, sig)) == pytest.approx(roc_auc_score(y, np.r_[bkg, sig]), abs=1e-12)


def test_fixed_efficiency_metrics_on_a_known_case():
    bkg = np.arange(1000.0)  # scores 0..999
    sig = np.arange(1000.0) + 10_000  # all above the background
    m = signal_metrics(bkg, sig, eps_s=0.3)
    assert m["auc"] == 1.0 and m["eb_at_es"] == 0.0 and np.isnan(m["es_at_eb_1e-5"])
    # half the signal above the whole background: eps_B(eps_S = 0.75) = 0.5
    sig2 = np.r_[np.arange(500.0) + 10_000, np.arange(500.0) * 2]
    assert eps_b_at(roc(bkg, sig2), 0.75) == pytest.approx(0.5, abs=0.01)
    m2 = signal_metrics(bkg, sig2, eps_s=0.75)
    assert m2["si"] == pytest.approx(0.75 / np.sqrt(m2["eb_at_es"]))


def test_bad_scores_are_rejected():
    with pytest.raises(ValueError, match="NaN or inf"):
        roc(np.array([0.0, np.nan]), np.array([1.0]))


def test_autoencoder_learns_background_and_scores_outliers_higher():
    g = torch.Generator().manual_seed(0)
    basis = torch.randn(3, 12, generator=g)
    bkg = torch.randn(4000, 3, generator=g) @ basis + 0.01 * torch.randn(4000, 12, generator=g)
    out = torch.randn(500, 12, generator=g)
    ae, hist = fit_autoencoder(bkg, ScoreConfig(bottleneck=3, hidden=(32, 16), epochs=30, batch_size=256), g)
    assert hist[-1] < hist[0]
    test_bkg = torch.randn(1000, 3, generator=g) @ basis
    assert auc(roc(ae.score(test_bkg).numpy(), ae.score(out).numpy())) > 0.95


def test_bottleneck_must_be_smaller_than_input():
    with pytest.raises(ValueError, match=r"bottleneck \(8\) must be smaller than the input dimension \(8\)"):
        AutoEncoder(8, ScoreConfig(bottleneck=8))
    with pytest.raises(ValueError, match="batch_size .* larger than the"):
        fit_autoencoder(torch.randn(100, 10), ScoreConfig(batch_size=512), torch.Generator().manual_seed(0))


def _separate_fit(x, cfg, g):
    """Slow reference: one AutoEncoder module with its own Adam, the fit as first written (one model at a
    time): validation split, init, batch order from `g`; early stopping; best weights back."""
    import copy

    n_val = max(1, int(len(x) * cfg.validation_fraction))
    perm = torch.randperm(len(x), generator=g)
    val, train = x[perm[:n_val]], x[perm[n_val:]]
    torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=g)))
    ae = AutoEncoder(x.shape[1], cfg)
    if cfg.standardise:
        ae.mean.copy_(train.mean(0))
        ae.std.copy_(train.std(0).clamp(min=1e-6))
    opt = torch.optim.Adam(ae.parameters(), lr=cfg.learning_rate)
    best, best_state, history, stale = float("inf"), None, [], 0
    for _ in range(cfg.epochs):
        ae.train()
        for idx in torch.randperm(len(train), generator=g).split(cfg.batch_size):
            z = (train[idx] - ae.mean) / ae.std
            loss = ((ae(train[idx]) - z) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        history.append(float(ae.score(val).mean()))
        if cfg.patience is None:  # as published: every epoch, the last weights
            continue
        if history[-1] < best - 1e-6:
            best, best_state, stale = history[-1], copy.deepcopy(ae.state_dict()), 0
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    if cfg.patience is not None:
        ae.load_state_dict(best_state)
    return ae, history


@pytest.mark.parametrize("options", [{"patience": 1, "standardise": True}, {}], ids=["early-stopping-standardised", "published"])
def test_batched_ensemble_equals_separate_fits(options):
    """Three AEs trained together (one batched MLP) give each member's separate fit: validation losses,
    early stopping and scores, to float rounding (a few epochs: later, rounding differences between a
    batched and a plain matrix product grow as in any two runs of SGD on different hardware); with early
    stopping on standardised inputs, and as published (every epoch, inputs as they are, last weights)."""
    from anomclr_ray.method.score import fit_autoencoders

    g = torch.Generator().manual_seed(4)
    x = torch.randn(3000, 10, generator=g) @ torch.randn(10, 10, generator=g)
    test = torch.randn(400, 10, generator=g) * 2
    cfg = ScoreConfig(bottleneck=3, hidden=(32, 16), epochs=3, batch_size=256, **options)
    together = fit_autoencoders(x, cfg, [torch.Generator().manual_seed(s) for s in (0, 1, 2)])
    for s, (ae, history) in zip((0, 1, 2), together):
        ref, ref_history = _separate_fit(x, cfg, torch.Generator().manual_seed(s))
        assert history == pytest.approx(ref_history, rel=1e-5)
        torch.testing.assert_close(ae.score(test), ref.score(test), rtol=1e-4, atol=1e-6)


def test_the_linear_probe_reads_classes_a_linear_map_separates_and_not_noise():
    from anomclr_ray.method.evaluate import linear_probe

    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (2000,), generator=g)
    centres = torch.randn(4, 3, generator=g) * 4
    x = centres[labels] + torch.randn(2000, 3, generator=g)
    noise = torch.randn(2000, 3, generator=g)
    acc = linear_probe(x[:1000], labels[:1000].numpy(), x[1000:], labels[1000:].numpy())
    chance = linear_probe(noise[:1000], labels[:1000].numpy(), noise[1000:], labels[1000:].numpy())
    assert acc > 0.9 and abs(chance - 0.25) < 0.06
    assert acc == linear_probe(x[:1000], labels[:1000].numpy(), x[1000:], labels[1000:].numpy())  # deterministic


def test_the_default_ae_is_the_published_one_and_sees_its_inputs_unstandardised():
    cfg = ScoreConfig()
    assert (cfg.hidden, cfg.bottleneck, cfg.learning_rate, cfg.epochs, cfg.batch_size) == ((256, 128, 64, 32, 16), 5, 1e-3, 100, 4096)
    assert cfg.patience is None and not cfg.standardise and cfg.raw_dim == 57
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 6, generator=g) * torch.tensor([1.0, 10.0, 100.0, 1.0, 1.0, 0.1]) + 5
    small = dict(bottleneck=2, hidden=(8,), epochs=2, batch_size=256)
    ae, _ = fit_autoencoder(x, ScoreConfig(**small), torch.Generator().manual_seed(1))
    assert (ae.mean == 0).all() and (ae.std == 1).all()
    with torch.no_grad():
        torch.testing.assert_close(ae.score(x[:50]), ((ae(x[:50]) - x[:50]) ** 2).mean(1))
    # the named option: each input minus its training mean over its training std (the training split:
    # the validation fifth drawn first from the same generator is left out)
    std_ae, _ = fit_autoencoder(x, ScoreConfig(**small, standardise=True), torch.Generator().manual_seed(1))
    train = x[torch.randperm(2000, generator=torch.Generator().manual_seed(1))[400:]]
    torch.testing.assert_close(std_ae.mean, train.mean(0))
    torch.testing.assert_close(std_ae.std, train.std(0))
    z = (x[:50] - train.mean(0)) / train.std(0)
    with torch.no_grad():
        torch.testing.assert_close(std_ae.score(x[:50]), ((std_ae(x[:50]) - z) ** 2).mean(1))


def test_ae_raw_inputs_are_the_57_kinematic_features_or_with_the_one_hot_type(background_sample):
    from anomclr_ray.method.evaluate import raw_inputs
    from anomclr_ray.events.preprocess import Preprocessor

    pre = Preprocessor.fit(background_sample)
    x = background_sample[:100]
    kinematic, full = raw_inputs(pre, x), raw_inputs(pre, x, one_hot=True)
    assert kinematic.shape == (100, 57) and full.shape == (100, 133)
    torch.testing.assert_close(kinematic.view(100, 19, 3), full.view(100, 19, 7)[..., :3])
    assert kinematic[:, 0].tolist() == pytest.approx((x[:, 0, 0] / pre.pt_scale).tolist(), rel=1e-6)  # MET / s
    assert ScoreConfig(raw_one_hot=True).raw_dim == 133
