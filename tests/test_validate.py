"""`anomclr validate` and the loader reject every broken layout with file, dataset, event and rule."""

import h5py
import numpy as np
import pytest

from anomclr_ray.cli import main
from anomclr_ray.events import layout as L
from anomclr_ray.events.io import EventFile, find_sample_file, load_events, write_events
from anomclr_ray.events.validate import EventValidationError, check_events, validate_file


def _write_raw(path, x, key=L.PARTICLES_KEY):
    with h5py.File(path, "w") as f:
        f.create_dataset(key, data=x)
    return path


def test_shipped_default_data_is_valid(default_data):
    for sample in L.SAMPLES:
        s = validate_file(find_sample_file(default_data, sample))
        assert s.n_events >= (200_000 if sample == L.BACKGROUND else 20_000)
        assert s.mean_multiplicity["jet"] > 0.5


def _event_with(x, index, slot, feature, value):
    y = x.copy()
    y[index, slot, feature] = value
    return y


def _first_event_with(x, slot):
    return int(np.flatnonzero(x[:, slot, L.CLASS] != 0)[0])


@pytest.mark.parametrize("mutate, rule", [
    (lambda x: _event_with(x, 7, 3, L.PT, np.nan), "NaN or inf"),
    (lambda x: _event_with(x, 7, 0, L.PHI, np.inf), "NaN or inf"),
    (lambda x: _event_with(x, _first_event_with(x, L.JETS.start), L.JETS.start, L.CLASS, 2), "class id does not match its slot"),
    (lambda x: _event_with(x, 5, 0, L.CLASS, 7), "unknown class id"),
    (lambda x: _event_with(x, 11, L.JETS.stop - 1, L.PT, 3.0), "empty slot .* non-zero"),
    (lambda x: _event_with(x, 4, 0, L.ETA, 0.5), "MET has non-zero eta"),
])
def test_each_broken_rule_is_named_with_its_event(tmp_path, background_sample, mutate, rule):
    x = mutate(background_sample[:50])
    bad_event = int(np.flatnonzero((x != background_sample[:50]).any(axis=(1, 2)) | ~np.isfinite(x).all(axis=(1, 2)))[0])
    path = _write_raw(tmp_path / "background_for_training.h5", x)
    with pytest.raises(EventValidationError, match=rf"background_for_training.h5:Particles: event {bad_event}: {rule}"):
        validate_file(path)
    with pytest.raises(EventValidationError, match=rule):
        load_events(path)  # the loader runs the same checks


def test_unordered_pt_and_gap_in_padding_are_rejected(background_sample):
    x = background_sample[:50].copy()
    i = int(np.flatnonzero(x[:, L.JETS.start + 1, L.CLASS] == L.JET_ID)[0])
    y = x.copy()
    y[i, [L.JETS.start, L.JETS.start + 1]] = y[i, [L.JETS.start + 1, L.JETS.start]]
    with pytest.raises(EventValidationError, match=f"event {i}: jets not pT-ordered"):
        check_events(y, "f.h5:Particles")
    j = int(np.flatnonzero((x[:, L.JETS, L.CLASS] != 0).sum(axis=1) == 2)[0])
    z = x.copy()
    z[j, L.JETS.start + 2] = z[j, L.JETS.start + 1]
    z[j, L.JETS.start + 1] = 0
    with pytest.raises(EventValidationError, match=f"event {j}: jets: object after an empty slot"):
        check_events(z, "f.h5:Particles")


def test_selection_cuts_are_checked_and_can_be_skipped(background_sample):
    x = background_sample[:50].copy()
    i = _first_event_with(x, L.JETS.start)
    x[i, L.JETS.start:L.JETS.stop, L.PT] = np.where(x[i, L.JETS, L.CLASS] > 0, 10.0, 0.0)
    with pytest.raises(EventValidationError, match=f"event {i}: jet below pT threshold 15.0"):
        check_events(x, "f.h5:Particles")
    check_events(x, "f.h5:Particles", selection=False)
    y = background_sample[:50].copy()
    y[:, L.LEPTONS, L.PT] = np.minimum(y[:, L.LEPTONS, L.PT], 20.0)
    with pytest.raises(EventValidationError, match="event 0: fails the trigger"):
        check_events(y, "f.h5:Particles")


def test_wrong_key_shape_dtype_and_non_hdf5(tmp_path, background_sample):
    x = background_sample[:10]
    with pytest.raises(EventValidationError, match=r"k.h5: no dataset 'Particles' \(found: Jets\)"):
        validate_file(_write_raw(tmp_path / "k.h5", x, key="Jets"))
    with pytest.raises(EventValidationError, match=r"s.h5:Particles: has shape \(10, 19, 3\), expected \(N, 19, 4\)"):
        EventFile(_write_raw(tmp_path / "s.h5", x[..., :3]))
    with pytest.raises(EventValidationError, match=r"d.h5:Particles: has dtype int64"):
        validate_file(_write_raw(tmp_path / "d.h5", x.astype(np.int64)))
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(EventValidationError, match="junk.h5: not a readable HDF5 file"):
        validate_file(junk)


def test_truncated_file_is_rejected(tmp_path, background_sample):
    path = write_events(tmp_path / "t.h5", background_sample)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(EventValidationError, match="t.h5"):
        validate_file(path)


def test_cli_exit_codes_and_messages(tmp_path, background_sample, default_data, capsys):
    good = write_events(tmp_path / "good.h5", background_sample[:100])
    bad = _write_raw(tmp_path / "bad.h5", _event_with(background_sample[:100], 42, 2, L.ETA, np.nan))
    assert main(["validate", str(good)]) == 0
    assert "good.h5: OK 100 events" in capsys.readouterr().out
    assert main(["validate", str(good), str(bad)]) == 1
    err = capsys.readouterr().err
    assert "bad.h5:Particles: event 42: NaN or inf" in err
    assert main(["validate", "--data-dir", str(default_data)]) == 0
    assert capsys.readouterr().out.count(": OK ") == 5
