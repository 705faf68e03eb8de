import numpy as np

from anomclr_ray.events import layout as L


def test_slots_tile_the_event_in_adc_order():
    covered = np.concatenate([np.arange(t.slots.start, t.slots.stop) for t in L.OBJECT_TYPES])
    assert covered.tolist() == list(range(L.N_SLOTS))
    assert [t.n_slots for t in L.OBJECT_TYPES] == [1, 4, 4, 10]
    assert L.SLOT_CLASS.tolist() == [1] + [2] * 4 + [3] * 4 + [4] * 10


def test_published_file_names_and_filtered_variant():
    assert L.candidate_file_names("background") == ("background_for_training.h5", "background_for_training_filtered.h5")
    assert set(L.FILE_NAMES) == {"background", *L.SIGNALS}


def test_unknown_sample_is_named_in_the_error():
    import pytest

    with pytest.raises(ValueError, match="unknown sample 'zprime'.*ato4l"):
        L.check_sample("zprime")
