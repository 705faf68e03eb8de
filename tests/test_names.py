"""The study vocabulary: methods and metric keys, built and parsed by one pair of functions."""

import pytest

from anomclr_ray.events import layout as L
from anomclr_ray.method.losses import LOSSES
from anomclr_ray.method.names import BASELINE, MEAN, MetricKey, method, methods, metric_key, objective_keys, parse_metric_key


def test_every_loss_and_the_baseline_are_methods_with_a_label_and_a_colour():
    known = methods()
    assert list(known) == [BASELINE, *LOSSES]
    assert [m.contrastive for m in known.values()] == [False] + [True] * len(LOSSES)
    assert len({m.color for m in known.values()}) == len({m.label for m in known.values()}) == len(known)
    with pytest.raises(ValueError, match="unknown method 'byol'"):
        method("byol")


@pytest.mark.parametrize("key", ["auc/ato4l", "si_std/hc_taunu", "eb_at_es/leptoquark", "auc/mean", "val_si/mean",
                                 "val_eb_at_es_std/h_tautau"])
def test_keys_round_trip(key):
    parsed = parse_metric_key(key)
    assert metric_key(parsed.name, parsed.signal, std=parsed.std, validation=parsed.validation) == key


def test_the_parts_of_a_key():
    assert parse_metric_key("val_eb_at_es_std/h_tautau") == MetricKey("eb_at_es", "h_tautau", std=True, validation=True)
    assert metric_key("auc", MEAN, validation=True) == "val_auc/mean"


@pytest.mark.parametrize("bad, why", [("auc", "no '/'"), ("auc/higgs", "signal 'higgs'"), ("acu/ato4l", "metric 'acu'"),
                                      ("eb_at_es/mean", "only auc, si have a mean"), ("auc_std/mean", "no std")])
def test_a_misspelled_key_is_refused_with_the_reason(bad, why):
    with pytest.raises(ValueError, match=f"{bad!r} is not a metric key.*{why}"):
        parse_metric_key(bad)


def test_objectives_are_auc_and_si_per_signal_and_mean_or_a_signal_free_metric_per_mix():
    assert objective_keys(L.SIGNALS, validation=False) == {f"{m}/{s}" for m in ("auc", "si") for s in (*L.SIGNALS, "mean")} \
        | {f"proxy_{m}/{mix}" for m in ("auc", "si") for mix in ("ao", "cs", "shift", "all")}
    assert "val_auc/mean" in objective_keys(L.SIGNALS, validation=True)


def test_the_encoder_and_its_training_do_not_apply_to_the_raw_input_baseline():
    from anomclr_ray.method.names import applies

    assert not applies("ae_raw", "train.mix") and not applies("ae_raw", "model.model_dim")
    assert applies("ae_raw", "train.seed") and applies("ae_raw", "score.bottleneck") and applies("ae_raw", "data.n_train")
    assert applies("anomclr_plus", "train.mix") and applies("clr", "model.model_dim")
