"""A seeded fuzz of what a user hands the platform: event files broken in many ways and configs with
wrong types, keys and values. Every case ends in one of two ways: a user error (`UserError`, one line,
naming the file or field), or, for a file a bit flip left readable and valid, events that pass the
layout checks. Nothing else: no other exception type, no traceback for the user, no hang.

The readers run in a child process here (`_outcomes`), so that a crash inside the HDF5 C library would
show as a crash of that process (a test failure) rather than take the test run down.
"""

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from anomclr_ray import configs
from anomclr_ray.errors import ConfigError, UserError
from anomclr_ray.events import layout as L
from anomclr_ray.events.io import write_events
from anomclr_ray.study import StudyConfig
from conftest import DEFAULT_DATA

N_EVENTS = 600
SEED = 2026


def _clean(path, events):
    write_events(path, events)
    return path.read_bytes()


def _file_cases(tmp_path, events) -> dict[str, object]:
    """{case: bytes of the file, or a function that writes it}."""
    rng = np.random.default_rng(SEED)
    good = _clean(tmp_path / "good.h5", events)
    cases: dict[str, object] = {}
    for frac in (0.5, 0.1, 0.01, 0.001):
        cases[f"truncated at {frac:.1%}"] = good[: max(1, int(len(good) * frac))]
    cases["zero-length"] = b""
    cases["a CSV renamed .h5"] = b"pt,eta,phi,class\n1,2,3,4\n" * 50
    cases["random bytes"] = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    for i in range(12):  # bit flips in the superblock and object headers (the first 2 kB)
        b = bytearray(good)
        for pos in rng.integers(0, min(2048, len(b)), 3):
            b[pos] ^= 1 << int(rng.integers(0, 8))
        cases[f"header bits flipped #{i}"] = bytes(b)
    for i in range(12):  # bit flips in the compressed data (the second half)
        b = bytearray(good)
        for pos in rng.integers(len(b) // 2, len(b), 20):
            b[pos] ^= 1 << int(rng.integers(0, 8))
        cases[f"data bits flipped #{i}"] = bytes(b)

    def dataset(name, data):
        def write(path):
            with h5py.File(path, "w") as f:
                f.create_dataset(name, data=data)
        return write

    cases["wrong dtype (strings)"] = dataset(L.PARTICLES_KEY, np.full((N_EVENTS, 19, 4), b"x", dtype="S1"))
    cases["wrong shape (N, 19, 3)"] = dataset(L.PARTICLES_KEY, events[..., :3])
    cases["wrong shape (N, 18, 4)"] = dataset(L.PARTICLES_KEY, events[:, :18])
    cases["wrong shape (N,)"] = dataset(L.PARTICLES_KEY, events[:, 0, 0])
    cases["missing dataset"] = dataset("particles", events)
    for what, (i, slot, feature, value) in {"NaN": (5, 0, L.PT, np.nan), "inf": (7, 9, L.ETA, np.inf),
                                            "negative pT": (11, 0, L.PT, -3.0)}.items():
        broken = events.copy()
        broken[i, slot, feature] = value
        cases[f"{what} in event {i}"] = dataset(L.PARTICLES_KEY, broken)
    empty = np.flatnonzero(events[:, L.JETS, L.PT].min(axis=1) == 0)[0]
    broken = events.copy()
    broken[empty, 18, L.PT] = -1.0  # a value in an empty slot
    cases["negative pT in an empty slot"] = dataset(L.PARTICLES_KEY, broken)
    return cases


READER = """
import json, sys
from anomclr_ray.errors import UserError
from anomclr_ray.events.io import EventFile
from anomclr_ray.events.validate import check_events
out = {}
for path in sys.argv[1:]:
    try:
        with EventFile(path) as f:
            x = f.read(0, len(f))
        check_events(x, path)
        out[path] = ["ok", len(x)]
    except UserError as err:
        out[path] = ["user", type(err).__name__, str(err)]
    except Exception as err:
        out[path] = ["bug", type(err).__name__, str(err)[:500]]
print(json.dumps(out))
"""


def _outcomes(paths: list[str]) -> dict[str, list]:
    run = subprocess.run([sys.executable, "-c", READER, *paths], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"the reader process crashed (status {run.returncode}):\n{run.stderr[-3000:]}"
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_broken_event_files_are_each_one_user_error_naming_the_file(tmp_path):
    with h5py.File(DEFAULT_DATA / L.FILE_NAMES[L.BACKGROUND]) as f:
        events = f[L.PARTICLES_KEY][:N_EVENTS]
    paths = {}
    for i, (case, content) in enumerate(_file_cases(tmp_path, events).items()):
        path = tmp_path / f"case{i:02d}" / L.FILE_NAMES[L.BACKGROUND]  # the real file's name
        path.parent.mkdir()
        if callable(content):
            content(path)
        else:
            path.write_bytes(content)
        paths[case] = str(path)
    outcomes = _outcomes(list(paths.values()))
    tally = {"user": 0, "ok": 0}
    for case, path in paths.items():
        kind, *rest = outcomes[path]
        assert kind != "bug", f"{case}: {rest}"
        tally[kind] += 1
        if kind == "user":
            message = rest[1]
            assert path in message and "\n" not in message, f"{case}: {message}"
        else:  # a flip the file survived: its events passed the layout checks, none lost
            assert case.startswith(("header bits", "data bits")) and rest == [N_EVENTS], case
    print(f"{len(paths)} broken files: {tally['user']} user errors naming the file, {tally['ok']} read as valid")
    # every structural break is an error, never "OK"
    assert all(outcomes[paths[c]][0] == "user" for c in paths if not c.startswith(("header bits", "data bits")))


CONFIG_CASES = {
    "a wrong type": ("train:\n  epochs: many\n", r"train\.epochs: expected int, got 'many'"),
    "a list for a number": ("train:\n  learning_rate: [1, 2]\n", r"train\.learning_rate: expected float"),
    "an unknown key": ("train:\n  epoch: 3\n", r"unknown field 'epoch'"),
    "an unknown section": ("trainer:\n  epochs: 3\n", r"unknown field 'trainer'"),
    "an out-of-range value": ("train:\n  temperature: -1\n", r"TrainConfig\.temperature must be > 0"),
    "an impossible split": ("data:\n  n_val: 5\n", r"DataConfig: a validation set needs both n_val and n_val_signal"),
    "an unknown method": ("search_space:\n  method:\n    grid: [ae_raw, jetclr]\n", r"unknown method 'jetclr'"),
    "a newer version's field": ("schema_version: 3\nname: x\n", r"unknown field 'schema_version'"),
    "not YAML": ("train: [epochs: 3\n", r"not a YAML file"),
    "not a mapping": ("- 1\n- 2\n", r"expected a mapping of StudyConfig fields"),
}


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_a_broken_study_config_is_one_config_error_naming_the_file_and_field(case, tmp_path):
    text, message = CONFIG_CASES[case]
    path = tmp_path / "study.yaml"
    path.write_text("name: fuzz\nsearch_space: {}\n" + text if not text.startswith(("name", "-", "schema")) else text)
    with pytest.raises(ConfigError, match=message) as err:
        configs.load(StudyConfig, path)
    assert isinstance(err.value, UserError) and str(path) in str(err.value) and "\n" not in str(err.value)
