import math

import pytest
import torch
import torch.nn.functional as F

from anomclr_ray.events.preprocess import Preprocessor
from anomclr_ray.losses import anomclr_loss, anomclr_plus_loss, clr_loss, contrastive_loss
from anomclr_ray.model import Encoder, ModelConfig


@pytest.fixture(scope="module")
def inputs(background_sample):
    return Preprocessor.fit(background_sample)(background_sample[:64])


def _small():
    torch.manual_seed(0)
    return Encoder(ModelConfig(model_dim=16, heads=4, layers=2, feedforward_dim=32, output_dim=8)).eval()


def test_encoder_is_permutation_invariant(inputs):
    enc = _small()
    perm = torch.randperm(19)
    torch.testing.assert_close(enc.represent(inputs[:, perm]), enc.represent(inputs), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(enc(inputs[:, perm]), enc(inputs), rtol=1e-4, atol=1e-4)


def test_empty_slots_change_nothing(inputs):
    enc = _small()
    junk = inputs.clone()
    empty = junk[..., 3:].sum(-1) == 0
    assert empty.any()
    junk[..., :3] = torch.where(empty[..., None], torch.randn_like(junk[..., :3]) * 5, junk[..., :3])
    torch.testing.assert_close(enc.represent(junk), enc.represent(inputs))
    assert enc.represent(inputs).shape == (64, 16) and enc(inputs).shape == (64, 8)


def test_bad_model_config_is_named():
    with pytest.raises(ValueError, match="model_dim .* multiple of heads"):
        ModelConfig(model_dim=10, heads=4)


# ---- slow references written from the paper's equations ----------------------------------------
def _cos(a, b):
    return float(a @ b / (a.norm() * b.norm()))


def _reference(h, hp, ha, tau, kind):
    views = list(h) + list(hp)
    b = len(h)
    total = 0.0
    for i in range(2 * b):
        j = (i + b) % (2 * b)  # the other view of the same event
        s_pos = _cos(views[i], views[j])
        s_anom = _cos(views[i], ha[i % b]) if ha is not None else 0.0
        if kind == "plus":
            total += (s_anom - s_pos) / tau
            continue
        num = math.exp((s_pos - s_anom) / tau)
        den = sum(math.exp(_cos(views[i], views[k]) / tau) for k in range(2 * b) if k != i)
        total += -math.log(num / den)
    return total / (2 * b)


@pytest.mark.parametrize("b", [1, 2, 7])
@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_losses_match_the_equations(b, tau):
    g = torch.Generator().manual_seed(b)
    h, hp, ha = (torch.randn(b, 5, generator=g, dtype=torch.float64) for _ in range(3))
    assert float(clr_loss(h, hp, tau)) == pytest.approx(_reference(h, hp, None, tau, "clr"), rel=1e-9)
    assert float(anomclr_loss(h, hp, ha, tau)) == pytest.approx(_reference(h, hp, ha, tau, "anom"), rel=1e-9)
    assert float(anomclr_plus_loss(h, hp, ha, tau)) == pytest.approx(_reference(h, hp, ha, tau, "plus"), rel=1e-9)


def test_gradients_are_finite_and_temperature_sharpens():
    g = torch.Generator().manual_seed(0)
    h, hp, ha = (torch.randn(32, 16, generator=g, requires_grad=True) for _ in range(3))
    for name in ("clr", "anomclr", "anomclr_plus"):
        loss = contrastive_loss(name, h, hp, ha, 0.1)
        (grad,) = torch.autograd.grad(loss, h)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()
    # perfectly aligned views: a lower temperature gives a lower CLR loss
    z = F.normalize(torch.randn(16, 8, generator=g), dim=1)
    assert float(clr_loss(z, z, 0.05)) < float(clr_loss(z, z, 0.5))
    # AnomCLR+ scales as 1/tau
    with torch.no_grad():
        assert float(anomclr_plus_loss(h, hp, ha, 0.1)) == pytest.approx(2 * float(anomclr_plus_loss(h, hp, ha, 0.2)), rel=1e-5)


def test_loss_errors():
    h = torch.randn(4, 3)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        clr_loss(h, h, 0.0)
    with pytest.raises(ValueError, match="unknown loss 'simclr'"):
        contrastive_loss("simclr", h, h, h, 0.1)
