import numpy as np
import pytest
import torch

from anomclr_ray.configs import from_plain, to_plain
from anomclr_ray.events import layout as L
from anomclr_ray.events.preprocess import Preprocessor


def test_fit_is_the_mean_object_pt(background_sample):
    p = Preprocessor.fit(background_sample)
    objs = background_sample[:, L.OBJECTS]
    expected = objs[..., L.PT][objs[..., L.CLASS] > 0].astype(np.float64).mean()
    assert p.pt_scale == pytest.approx(expected)


def test_transform_scales_and_keeps_empty_slots_zero(background_sample):
    p = Preprocessor(pt_scale=20.0)
    x = background_sample[:64]
    y = p(x)
    assert y.shape == (64, 19, 7) and y.dtype == torch.float32
    empty = torch.as_tensor(x[..., L.CLASS] == 0)
    assert (y[empty] == 0).all()
    np.testing.assert_allclose(y[..., 0].numpy(), x[..., L.PT] / 20.0, rtol=1e-6)
    np.testing.assert_allclose(y[..., 1].numpy(), x[..., L.ETA] / 4.0, rtol=1e-6)
    np.testing.assert_allclose(y[..., 2].numpy(), x[..., L.PHI] / np.pi, rtol=1e-6)
    one_hot = y[..., 3:]
    assert (one_hot.sum(-1) == (~empty).float()).all()
    assert (one_hot[:, 0, 0] == 1).all()  # MET
    jets = one_hot[:, L.JETS][~empty[:, L.JETS]]
    assert (jets.argmax(-1) == 3).all()


def test_save_load_roundtrip_and_bad_scale():
    p = Preprocessor(pt_scale=17.5)  # as a checkpoint stores it
    assert from_plain(Preprocessor, to_plain(p)) == p
    with pytest.raises(ValueError, match="pt_scale must be a positive finite"):
        Preprocessor(pt_scale=0.0)
