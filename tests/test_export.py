"""A scorer taken out of its study: the validity domain on the shipped events and on files prepared to
differ, and the scorer's files read back with the same scores in any batch size or order. (The whole
way, a tiny study -> export -> apply -> `mlflow models predict`, is in test_study.py's end-to-end test.)"""

import numpy as np
import pytest
import torch

from anomclr_ray.events import layout as L
from anomclr_ray.events.io import EventFile, find_sample_file
from anomclr_ray.events.preprocess import Preprocessor
from anomclr_ray.export import BOUNDARIES, Domain, Scorer
from anomclr_ray.export.domain import data_provenance
from anomclr_ray.method.model import ModelConfig, build_encoder
from anomclr_ray.method.score import ScoreConfig, fit_autoencoders
from conftest import DEFAULT_DATA


@pytest.fixture(scope="module")
def shipped():
    """(the domain of 20k training background events, 10k held-out background events, {signal: events})."""
    with EventFile(find_sample_file(DEFAULT_DATA, L.BACKGROUND)) as f:
        train, held_out = f.read(0, 20_000), f.read(len(f) - 10_000)
    signals = {}
    for s in L.SIGNALS:
        with EventFile(find_sample_file(DEFAULT_DATA, s)) as f:
            signals[s] = f.read()
    return Domain.of(train, data_provenance(DEFAULT_DATA)), held_out, signals


def test_the_shipped_background_and_every_signal_lie_inside_the_domain(shipped):
    domain, held_out, signals = shipped
    assert domain.pt_min["jet"] == pytest.approx(L.JET.pt_min, abs=0.5)  # the definitions the files were made with
    assert domain.trigger_pt == pytest.approx(L.TRIGGER_PT, abs=0.5)
    assert domain.provenance["config_hash"] and domain.provenance["sha256"][L.FILE_NAMES[L.BACKGROUND]]
    for name, events in {"background": held_out, **signals}.items():
        inside = (domain.check(events) == 0).mean()
        assert inside >= 0.99, f"{name}: only {inside:.2%} inside"


def _crafted(events: np.ndarray) -> dict[str, tuple[np.ndarray, str]]:
    """Held-out events made to differ as other data would: {case: (events, the boundary expected)}."""
    soft = events[events[:, L.JETS.stop - 1, L.CLASS] == L.EMPTY_ID].copy()  # room for one more jet
    n_jets = (soft[:, L.JETS, L.CLASS] != L.EMPTY_ID).sum(1)
    rows, slots = np.arange(len(soft)), L.JETS.start + n_jets
    soft[rows, slots] = [8.0, 0.5, 1.0, L.JET_ID]  # a jet below the 15 GeV threshold: another object definition
    wide = events[events[:, L.JETS.start, L.CLASS] == L.JET_ID].copy()
    wide[:, L.JETS.start, L.ETA] = 4.7  # the leading jet beyond |eta| 4
    mev = events.copy()
    mev[..., L.PT] *= 1000.0
    no_trigger = events.copy()
    no_trigger[:, L.LEPTONS] = 0.0  # the leptons (and so the trigger lepton) gone
    return {"lower object thresholds": (soft, "jet pT below the training threshold"),
            "a wider |eta| range": (wide, "jet |eta| beyond the training acceptance"),
            "MeV instead of GeV": (mev, "pT above the beam energy (units: GeV expected)"),
            "events without the trigger lepton": (no_trigger, "no trigger lepton (electron or muon above the training trigger pT)")}


def test_a_few_training_events_give_the_declared_definitions_and_a_tighter_set_its_own(shipped):
    domain, held_out, _ = shipped
    few = Domain.of(held_out[:200])  # extremes short of the thresholds (few soft leptons): the definitions
    assert few.pt_min == {t.name: t.pt_min for t in L.OBJECT_TYPES[1:]} and few.trigger_pt == L.TRIGGER_PT
    assert few.seen["electron_pt_min"] > L.ELECTRON.pt_min  # recorded beside them
    hard = held_out.copy()
    jets = hard[:, L.JETS]
    jets[jets[..., L.PT] < 40] = 0.0  # a set defined with 40 GeV jets (the padding stays at the end)
    hard[:, L.JETS] = jets
    assert Domain.of(hard).pt_min["jet"] >= 40


def test_files_prepared_to_differ_are_flagged_with_the_boundary_they_cross(shipped):
    domain, held_out, _ = shipped
    for case, (events, boundary) in _crafted(held_out).items():
        codes = domain.check(events)
        named = (codes == BOUNDARIES.index(boundary)).mean()
        assert named >= 0.99, f"{case}: {named:.2%} flagged as {boundary!r} ({np.bincount(codes)})"


def _scorer(events: np.ndarray, encoder: bool) -> Scorer:
    pre = Preprocessor.fit(events)
    model = None
    score = ScoreConfig(bottleneck=3, hidden=(16, 8), epochs=2, batch_size=128, raw_one_hot=not encoder)
    if encoder:
        torch.manual_seed(0)
        model = build_encoder(ModelConfig(model_dim=16, heads=2, layers=1, feedforward_dim=16, output_dim=16)).eval()
    scorer = Scorer("anomclr_plus" if encoder else "ae_raw", pre, model, [], score, Domain.of(events), {0.5: 1.0}, {"x": 1})
    x = scorer.inputs(events, torch.device("cpu"))
    scorer.autoencoders = [ae for ae, _ in fit_autoencoders(x, score, [torch.Generator().manual_seed(s) for s in (0, 1)])]
    return scorer


@pytest.mark.parametrize("encoder", [True, False], ids=["encoder", "ae_raw"])
def test_a_scorer_read_back_gives_the_same_scores_in_any_batch_size_or_order(shipped, tmp_path, encoder):
    _, held_out, _ = shipped
    events = held_out[:1000]
    scorer = _scorer(events, encoder)
    score, spread = scorer.scores(events)
    assert score.shape == spread.shape == (1000,) and (spread > 0).all()
    again = Scorer.load(scorer.save(tmp_path / "scorer"))
    assert again.domain == scorer.domain and again.reference == scorer.reference
    np.testing.assert_allclose(again.scores(events)[0], score, rtol=1e-6)
    np.testing.assert_allclose(again.scores(events, batch_size=7)[0], score, rtol=1e-6)
    order = np.random.default_rng(0).permutation(1000)
    np.testing.assert_allclose(again.scores(events[order])[0], score[order], rtol=1e-6)
    files = {p.name: p.stat().st_size for p in (tmp_path / "scorer").iterdir()}
    assert set(files) == {"scorer.json", "autoencoders.pt", *(["encoder.pt"] if encoder else [])}
    print(f"scorer files ({'encoder' if encoder else 'AE-Raw'}): {files}")


def test_a_scorer_of_another_format_is_refused_with_the_version_that_wrote_it(shipped, tmp_path):
    import json

    from anomclr_ray.errors import ConfigError

    directory = _scorer(shipped[1][:500], False).save(tmp_path / "scorer")
    meta = json.loads((directory / "scorer.json").read_text())
    (directory / "scorer.json").write_text(json.dumps({**meta, "format": 99, "anomclr_version": "9.0"}))
    with pytest.raises(ConfigError, match=r"a scorer of format 99 \(written by anomclr-ray 9.0\)"):
        Scorer.load(directory)


def test_apply_flags_a_file_prepared_to_differ_and_strict_refuses_it_after_writing(shipped, tmp_path):
    from anomclr_ray.errors import DataError
    from anomclr_ray.events.io import write_events
    from anomclr_ray.export.registry import apply_model

    import h5py

    _, held_out, _ = shipped
    scorer = _scorer(held_out[:1000], encoder=False)
    mev = held_out[:500].copy()
    mev[..., L.PT] *= 1000.0
    (tmp_path / "data").mkdir()
    write_events(tmp_path / "data" / "mev.h5", mev)
    write_events(tmp_path / "data" / "gev.h5", held_out[:500])
    with pytest.raises(DataError, match=r"mev.h5: 100.0% of its events are outside the model's domain \(--strict 0.01\)"):
        apply_model(scorer, tmp_path / "data", tmp_path / "out", strict=0.01, progress=False)
    with h5py.File(tmp_path / "out" / "gev.scores.h5") as h:  # every file's outputs were written first
        assert h["in_domain"][:].mean() >= 0.99 and len(h["score"]) == 500
    report = (tmp_path / "out" / "mev.report.md").read_text()
    assert "| pT above the beam energy (units: GeV expected) | 500 | 100.00% |" in report


def test_apply_with_a_missing_model_is_one_line_and_exit_2(tmp_path, capsys):
    from anomclr_ray import cli

    uri = f"sqlite:///{tmp_path}/mlruns.db"
    code = cli.main(["apply", "--model", "models:/nothing@candidate", "--tracking-uri", uri, "--data", str(DEFAULT_DATA),
                     "--out", str(tmp_path / "out")])
    last = capsys.readouterr().err.strip().splitlines()[-1]  # (MLflow logs its new store's creation before it)
    assert code == 2 and last.startswith("anomclr apply: error: model models:/nothing@candidate not found in sqlite:")
