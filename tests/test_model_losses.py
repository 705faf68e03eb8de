import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from anomclr_ray.events import layout as L
from anomclr_ray.events.preprocess import Preprocessor
from anomclr_ray.method.losses import anomclr_loss, anomclr_plus_loss, clr_loss, contrastive_loss, simclr_loss, supcon_loss, vicreg_loss
from anomclr_ray.method.model import Encoder, ModelConfig, Packing


@pytest.fixture(scope="module")
def inputs(background_sample):
    return Preprocessor.fit(background_sample)(background_sample[:64])


def _small(packed=True):
    torch.manual_seed(0)
    return Encoder(ModelConfig(model_dim=16, heads=4, layers=2, feedforward_dim=32, output_dim=8, packed=packed)).eval()


@pytest.mark.parametrize("packed", [True, False])
def test_encoder_is_permutation_invariant(inputs, packed):
    enc = _small(packed)
    perm = torch.randperm(19)
    torch.testing.assert_close(enc.represent(inputs[:, perm]), enc.represent(inputs), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(enc(inputs[:, perm]), enc(inputs), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("packed", [True, False])
def test_empty_slots_change_nothing(inputs, packed):
    enc = _small(packed)
    junk = inputs.clone()
    empty = junk[..., 3:].sum(-1) == 0
    assert empty.any()
    junk[..., :3] = torch.where(empty[..., None], torch.randn_like(junk[..., :3]) * 5, junk[..., :3])
    torch.testing.assert_close(enc.represent(junk), enc.represent(inputs))
    assert enc.represent(inputs).shape == (64, 16) and enc(inputs).shape == (64, 8)


def _full_event(like: np.ndarray) -> np.ndarray:
    """One event with all 19 slots filled: MET, 4 electrons, 4 muons, 10 jets (pT-ordered, in acceptance)."""
    x = like[:1].copy()
    for t in (L.ELECTRON, L.MUON, L.JET):
        n = t.n_slots
        x[0, t.slots, L.PT] = np.linspace(90.0, t.pt_min + 5, n)
        x[0, t.slots, L.ETA] = np.linspace(-0.9, 0.9, n) * t.eta_max
        x[0, t.slots, L.PHI] = np.linspace(-3.0, 3.0, n)
        x[0, t.slots, L.CLASS] = t.class_id
    return x


@pytest.fixture(scope="module")
def edge_inputs(background_sample):
    """Shipped events plus a one-object-plus-MET event and a full 19-slot event, preprocessed."""
    n_obj = (background_sample[:, L.OBJECTS, L.CLASS] > 0).sum(1)
    single = background_sample[n_obj == 1][:1]
    assert len(single) == 1
    events = np.concatenate([background_sample[:200], single, _full_event(background_sample)])
    return Preprocessor.fit(background_sample)(events)


def test_packed_encoder_equals_the_padded_computation(edge_inputs):
    """Computing on the filled slots only gives the representation, head output and gradients of the
    network run over all 19 slots with a key-padding mask (same weights)."""
    torch.manual_seed(1)
    enc = Encoder(ModelConfig(model_dim=32, heads=4, layers=2, feedforward_dim=48, output_dim=8, dropout=0.0))
    x = edge_inputs.double()
    enc = enc.double()
    packed, padded = enc.represent_packed(x), enc.represent_padded(x)
    torch.testing.assert_close(packed, padded, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(enc.head(packed), enc.head(padded), rtol=1e-10, atol=1e-10)
    grads = []
    for represent in (enc.represent_packed, enc.represent_padded):
        enc.zero_grad()
        (enc.head(represent(x)) ** 2).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in enc.parameters()]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-9, atol=1e-10)
    assert (edge_inputs[-1, :, 3:].sum(-1) == 1).all()  # the full event really fills all 19 slots


def test_packing_orders_events_by_multiplicity_into_dense_blocks():
    """Events sorted (stably) by their number of objects, each event's objects in slot order; an event
    without objects has no block and a zero representation."""
    counts = [3, 1, 3, 0, 2]
    filled = torch.tensor([[j < c for j in range(19)] for c in counts])
    packed = Packing.of(filled)
    assert packed.blocks == ((1, 1), (2, 1), (3, 2))
    assert packed.events.tolist() == [1, 4, 4, 0, 0, 0, 2, 2, 2]
    assert packed.slots.tolist() == [0, 0, 1, 0, 1, 2, 0, 1, 2]
    x = torch.zeros(5, 19, 7)
    x[..., 3] = filled.float()  # every object an (empty-kinematics) MET-type object
    x[..., :3] = torch.randn(5, 19, 3) * filled[..., None]
    enc = Encoder(ModelConfig(model_dim=8, heads=2, layers=1)).eval()
    with torch.no_grad():
        torch.testing.assert_close(enc.represent_packed(x), enc.represent_padded(x), atol=1e-5, rtol=1e-5)
        assert (enc.represent_packed(x)[3] == 0).all()


def test_packed_encoder_matches_in_float32_eval_mode(edge_inputs):
    torch.manual_seed(2)
    enc = Encoder(ModelConfig(model_dim=24, heads=4, layers=2)).eval()  # dropout off in eval
    with torch.no_grad():
        torch.testing.assert_close(enc.represent_packed(edge_inputs), enc.represent_padded(edge_inputs), rtol=1e-4, atol=1e-4)
    assert Encoder(ModelConfig(model_dim=24, heads=4, layers=2, packed=False)).eval()(edge_inputs).shape == (len(edge_inputs), 24)


def test_bad_model_config_is_named():
    with pytest.raises(ValueError, match="model_dim .* multiple of heads"):
        ModelConfig(model_dim=10, heads=4)


# ---- slow references written from docs/design.md's equations ------------------------------------------
def _cos(a, b):
    return float(a @ b / (a.norm() * b.norm()))


def _reference(h, hp, ha, tau, kind):
    """Loops over the 2B anchors a = [z; z']: partner p(a) = the other view of a's event i, negatives =
    every view of every other event, anomaly term s(z_i, z*_i) for both anchors of event i."""
    views = list(h) + list(hp)
    b = len(h)
    total = 0.0
    for a in range(2 * b):
        i = a % b
        p = (a + b) % (2 * b)
        s_pos = _cos(views[a], views[p])
        s_anom = _cos(h[i], ha[i]) if ha is not None else 0.0
        if kind == "plus":
            total += (s_anom - s_pos) / tau
            continue
        num = math.exp((s_pos - s_anom) / tau)
        den = sum(math.exp(_cos(views[a], views[k]) / tau) for k in range(2 * b) if k % b != i)
        total += -math.log(num / den)
    return total / (2 * b)


def _published_form(h, hp, ha, tau, kind):
    """The published code's computation, step by step: the dense (2B, 2B) cosine matrix of [z; z'], the
    positives on its +-B diagonals, negatives = the matrix without its diagonal and both +-B diagonals,
    the anomaly positives on the +-B diagonals of the [z; z*] matrix; sum of -log terms over 2B."""
    b = len(h)
    z = F.normalize(torch.cat([h, hp]), dim=1)
    sim = z @ z.T
    pos = torch.cat([torch.diagonal(sim, b), torch.diagonal(sim, -b)])
    ones = torch.ones(2 * b, dtype=torch.bool)
    drop = torch.diag(ones) | torch.diag(ones[:b], b) | torch.diag(ones[:b], -b)
    den = (torch.exp(sim / tau) * ~drop).sum(1)
    if ha is not None:
        zn = F.normalize(torch.cat([h, ha]), dim=1)
        simn = zn @ zn.T
        pos = pos - torch.cat([torch.diagonal(simn, b), torch.diagonal(simn, -b)])
    num = torch.exp(pos / tau)
    terms = -torch.log(num) if kind == "plus" else -torch.log(num / den)
    return float(terms.sum() / (2 * b))


@pytest.mark.parametrize("b", [1, 2, 16, 64])
@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_losses_match_the_equations_and_the_published_form(b, tau):
    g = torch.Generator().manual_seed(b)
    h, hp, ha = (torch.randn(b, 5, generator=g, dtype=torch.float64) for _ in range(3))
    plus = float(anomclr_plus_loss(h, hp, ha, tau))
    assert plus == pytest.approx(_reference(h, hp, ha, tau, "plus"), rel=1e-9)
    assert plus == pytest.approx(_published_form(h, hp, ha, tau, "plus"), rel=1e-9)
    if b == 1:  # no other event: the denominator is an empty sum
        for loss in (lambda: clr_loss(h, hp, tau), lambda: anomclr_loss(h, hp, ha, tau)):
            with pytest.raises(ValueError, match="global batch of 1 event has no negatives"):
                loss()
        return
    for ours, kind, anom in ((clr_loss(h, hp, tau), "clr", None), (anomclr_loss(h, hp, ha, tau), "anom", ha)):
        assert float(ours) == pytest.approx(_reference(h, hp, anom, tau, kind), rel=1e-9)
        assert float(ours) == pytest.approx(_published_form(h, hp, anom, tau, kind), rel=1e-9)


def test_negatives_exclude_the_partner_and_anomaly_term_uses_the_event():
    """The two fidelity points on their own: moving only the partner view changes CLR's numerator but not
    its denominator; the anomaly term does not depend on the physical view."""
    g = torch.Generator().manual_seed(3)
    h, hp, ha = (torch.randn(8, 4, generator=g, dtype=torch.float64) for _ in range(3))
    # AnomCLR - CLR = mean over anchors of s(z_i, z*_i)/tau: the same for both anchors of event i
    diff = float(anomclr_loss(h, hp, ha, 0.2) - clr_loss(h, hp, 0.2))
    expected = float((F.normalize(h, dim=1) * F.normalize(ha, dim=1)).sum(1).mean() / 0.2)
    assert diff == pytest.approx(expected, rel=1e-9)
    # a batch of two identical events: each anchor's only negatives are the other event's two views
    one = torch.randn(1, 4, generator=g, dtype=torch.float64)
    pair = torch.cat([one, one])
    assert float(clr_loss(pair, pair, 0.5)) == pytest.approx(math.log(2.0), rel=1e-9)


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
    with pytest.raises(ValueError, match="unknown loss 'byol'"):
        contrastive_loss("byol", h, h, h, 0.1)


def _simclr_reference(h, h2, tau, labels=None):
    """SimCLR / SupCon from their equations, one anchor at a time: views [z; z'], the denominator over
    every view but the anchor, positives = the partner (SimCLR) or every other view with the anchor's label."""
    views = list(h) + list(h2)
    b = len(h)
    total = 0.0
    for a in range(2 * b):
        den = sum(math.exp(_cos(views[a], views[k]) / tau) for k in range(2 * b) if k != a)
        if labels is None:
            positives = [(a + b) % (2 * b)]
        else:
            positives = [k for k in range(2 * b) if k != a and labels[k % b] == labels[a % b]]
        total += sum(-math.log(math.exp(_cos(views[a], views[p]) / tau) / den) for p in positives) / len(positives)
    return total / (2 * b)


def _vicreg_reference(h, h2, weights):
    """VICReg from its definition, element by element."""
    lam, mu, nu = weights
    n, d = h.shape
    invariance = sum(float(h[i, j] - h2[i, j]) ** 2 for i in range(n) for j in range(d)) / (n * d)
    variance = covariance = 0.0
    for x in (h, h2):
        mean = [sum(float(x[i, j]) for i in range(n)) / n for j in range(d)]
        cov = [[sum((float(x[i, j]) - mean[j]) * (float(x[i, k]) - mean[k]) for i in range(n)) / (n - 1)
                for k in range(d)] for j in range(d)]
        variance += sum(max(0.0, 1 - math.sqrt(cov[j][j] + 1e-4)) for j in range(d)) / d / 2
        covariance += sum(cov[j][k] ** 2 for j in range(d) for k in range(d) if j != k) / d
    return lam * invariance + mu * variance + nu * covariance


@pytest.mark.parametrize("b", [2, 16])
@pytest.mark.parametrize("tau", [0.1, 0.9])
def test_companion_losses_match_their_equations(b, tau):
    g = torch.Generator().manual_seed(b)
    h, h2 = (torch.randn(b, 5, generator=g, dtype=torch.float64) for _ in range(2))
    labels = torch.randint(0, 3, (b,), generator=g)
    assert float(simclr_loss(h, h2, tau)) == pytest.approx(_simclr_reference(h, h2, tau), rel=1e-9)
    assert float(supcon_loss(h, h2, labels, tau)) == pytest.approx(_simclr_reference(h, h2, tau, labels.tolist()), rel=1e-9)
    weights = (25.0, 25.0, 1.0)
    small = 0.3 * h  # std below 1: the variance term is active
    assert float(vicreg_loss(small, h2, weights)) == pytest.approx(_vicreg_reference(small, h2, weights), rel=1e-9)
    assert float(vicreg_loss(h, h2, (1.0, 0.0, 0.0))) == pytest.approx(float(((h - h2) ** 2).mean()), rel=1e-12)


def test_supcon_with_distinct_labels_is_simclr_and_simclr_holds_the_partner_in_its_denominator():
    g = torch.Generator().manual_seed(7)
    h, h2 = (torch.randn(8, 4, generator=g, dtype=torch.float64) for _ in range(2))
    assert float(supcon_loss(h, h2, torch.arange(8), 0.5)) == pytest.approx(float(simclr_loss(h, h2, 0.5)), rel=1e-12)
    # SimCLR's denominator adds the partner to CLR's: log(sum + e^{s_pos/tau}) > log(sum)
    assert float(simclr_loss(h, h2, 0.5)) > float(clr_loss(h, h2, 0.5))
    with pytest.raises(ValueError, match="supcon needs the background process labels"):
        supcon_loss(h, h2, None, 0.5)
    with pytest.raises(ValueError, match="vicreg's variance needs a global batch of >= 2"):
        vicreg_loss(h[:1], h2[:1])


def test_the_mlp_encoder_reads_the_57_kinematic_features_and_projects_to_the_embedding(inputs):
    from anomclr_ray.method.model import MLPEncoder, build_encoder

    cfg = ModelConfig(kind="mlp", embedding_dim=4, output_dim=8)
    enc = build_encoder(cfg).eval()
    assert isinstance(enc, MLPEncoder) and enc.net[0].in_features == 57
    assert [m.out_features for m in enc.net if isinstance(m, torch.nn.Linear)] == [96, 64, 48, 4]
    assert enc.represent(inputs).shape == (len(inputs), 4) and enc(inputs).shape == (len(inputs), 8)
    # the type one-hot is not an input: the slot says the type
    changed = inputs.clone()
    changed[..., 3:] = 0
    torch.testing.assert_close(enc.represent(changed), enc.represent(inputs))


def test_an_embedding_dimension_projects_the_transformer_and_old_checkpoints_keep_their_keys(inputs):
    plain = Encoder(ModelConfig(model_dim=16, heads=4, layers=1)).eval()
    assert not any(k.startswith("project.") for k in plain.state_dict())  # checkpoints from before load as they were
    low = Encoder(ModelConfig(model_dim=16, heads=4, layers=1, embedding_dim=4, output_dim=32)).eval()
    assert low.represent(inputs).shape == (len(inputs), 4) and low(inputs).shape == (len(inputs), 32)
    assert low.cfg.rep_dim == 4 and plain.cfg.rep_dim == 16
    with pytest.raises(ValueError, match="ModelConfig.kind: unknown 'cnn'"):
        ModelConfig(kind="cnn")
    ModelConfig(kind="mlp", model_dim=6)  # heads do not apply to the MLP
