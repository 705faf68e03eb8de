import h5py
import numpy as np
import pytest

from anomclr_ray.events import layout as L
from anomclr_ray.events.io import EventFile, find_sample_file, write_events


def test_roundtrip_keeps_published_keys_labels_and_provenance(tmp_path, background_sample):
    labels = np.arange(len(background_sample)) % 4
    path = write_events(tmp_path / "bg.h5", background_sample, labels=labels, attrs={"seed": 3, "processes": {"w": 1}})
    with h5py.File(path) as f:
        assert set(f) == {L.PARTICLES_KEY, L.CLASSES_KEY, L.NAMES_KEY, L.LABELS_KEY}
        assert [c.decode() for c in f[L.NAMES_KEY][()]] == ["Pt", "Eta", "Phi", "Class"]
        assert f[L.PARTICLES_KEY].compression == "gzip" and f[L.PARTICLES_KEY].shuffle
    with EventFile(path) as f:
        assert len(f) == len(background_sample)
        np.testing.assert_array_equal(f.read(100, 300), background_sample[100:300])
        np.testing.assert_array_equal(f.labels(100, 300), labels[100:300])
        assert f.attrs["seed"] == 3 and f.attrs["processes"] == {"w": 1}


def test_published_float64_files_read_as_float32(tmp_path, background_sample):
    path = tmp_path / "pub.h5"
    with h5py.File(path, "w") as f:  # the published files: float64, no labels, no provenance
        f.create_dataset(L.PARTICLES_KEY, data=background_sample.astype(np.float64))
    with EventFile(path) as f:
        x = f.read()
        assert x.dtype == np.float32 and f.labels() is None
    np.testing.assert_array_equal(x, background_sample)


def test_slicing_reads_only_the_requested_chunks(tmp_path, background_sample):
    big = np.concatenate([background_sample] * 10)
    path = write_events(tmp_path / "big.h5", big)
    with EventFile(path) as f:
        assert f.particles.chunks[0] <= 8192  # chunked storage: a slice decompresses only its chunks
        np.testing.assert_array_equal(f.read(15_000, 15_010), big[15_000:15_010])


def test_filtered_file_names_are_accepted(tmp_path, background_sample):
    write_events(tmp_path / "Ato4l_lepFilter_13TeV_filtered.h5", background_sample[:5])
    assert find_sample_file(tmp_path, "ato4l").name == "Ato4l_lepFilter_13TeV_filtered.h5"
    with pytest.raises(FileNotFoundError, match="no file for sample 'h_tautau'.*hToTauTau_13TeV_PU20.h5"):
        find_sample_file(tmp_path, "h_tautau")


def test_write_is_atomic_and_refuses_broken_events(tmp_path, background_sample):
    x = background_sample[:20].copy()
    x[3, 0, L.PT] = np.nan
    with pytest.raises(ValueError, match="event 3: NaN"):
        write_events(tmp_path / "x.h5", x)
    assert list(tmp_path.iterdir()) == []
