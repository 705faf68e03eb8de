"""Real Pythia 8 + FastJet generation through Ray, on tiny samples."""

import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from anomclr_ray.cli import main
from anomclr_ray.events import layout as L
from anomclr_ray.events.generation.processes import PROCESSES
from anomclr_ray.events.generation.pythia_chunk import generate_chunk
from anomclr_ray.events.generation.runner import GenerationConfig, generate, plan_chunks
from anomclr_ray.events.validate import check_events


def test_chunk_is_deterministic_and_valid():
    a = generate_chunk(PROCESSES["z"], seed=5, chunk=2, n_accept=20)
    b = generate_chunk(PROCESSES["z"], seed=5, chunk=2, n_accept=20)
    c = generate_chunk(PROCESSES["z"], seed=5, chunk=3, n_accept=20)
    np.testing.assert_array_equal(a.events, b.events)
    assert a.n_generated == b.n_generated >= 20
    assert not np.array_equal(a.events, c.events)
    check_events(a.events, "z chunk")


def test_cocktail_split_and_chunk_plan():
    cfg = GenerationConfig(n_background=1000, n_signal=7, chunk_size=300, signals=("ato4l",))
    assert cfg.process_counts() == {"w": 832, "qcd": 34, "z": 125, "ttbar": 9, "ato4l": 7}
    plan = plan_chunks(cfg)
    assert sum(c.n for c in plan) == 1007
    assert max(c.n for c in plan) == 300


@pytest.mark.slow
def test_same_files_for_one_or_two_workers_and_resume_from_cache(tmp_path):
    # 6 chunks (W's 83 events in two; a Pythia start, ~3 s, is most of a chunk's time at this size)
    cfg = GenerationConfig(n_background=100, n_signal=10, seed=9, chunk_size=50, signals=("ato4l",))
    one = generate(cfg, tmp_path / "one", workers=1, progress=False)
    two = generate(cfg, tmp_path / "two", workers=2, progress=False)
    for sample in one["files"]:
        with h5py.File(tmp_path / "one" / L.FILE_NAMES[sample]) as a, h5py.File(tmp_path / "two" / L.FILE_NAMES[sample]) as b:
            np.testing.assert_array_equal(a[L.PARTICLES_KEY][()], b[L.PARTICLES_KEY][()])
    assert one["checksums"] == two["checksums"]
    with h5py.File(tmp_path / "one" / L.FILE_NAMES[L.BACKGROUND]) as f:
        assert sorted(np.unique(f[L.LABELS_KEY][()])) == [0, 1, 2, 3]
        assert f.attrs["config_hash"] == one["config_hash"] and f.attrs["seed"] == 9
    # all chunks are cached: regenerating after losing the output needs no Pythia and gives the same bytes
    (tmp_path / "one" / L.FILE_NAMES["ato4l"]).unlink()
    (tmp_path / "one" / "provenance.json").unlink()
    t = time.perf_counter()
    again = generate(cfg, tmp_path / "one", workers=1, progress=False)
    assert time.perf_counter() - t < 5
    assert again["checksums"] == one["checksums"]


@pytest.mark.slow
def test_killed_generation_leaves_no_file_and_resumes(tmp_path):
    out = tmp_path / "data"
    cmd = [sys.executable, "-m", "anomclr_ray.cli", "generate", "--out", str(out), "--background", "0",
           "--signal", "60", "--signals", "ato4l", "--chunk-size", "10", "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cache = out / ".cache"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(cache.glob("*.npz"))) < 2:
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    cached = len(list(cache.glob("*.npz")))
    assert 2 <= cached < 6, cached
    assert not (out / L.FILE_NAMES["ato4l"]).exists()
    assert not list(out.glob("*.h5")) and not list(out.glob(".*tmp*"))
    assert main(["generate", "--out", str(out), "--background", "0", "--signal", "60", "--signals", "ato4l",
                 "--chunk-size", "10", "--workers", "1", "--quiet"]) == 0
    with h5py.File(out / L.FILE_NAMES["ato4l"]) as f:
        assert f[L.PARTICLES_KEY].shape == (60, 19, 4)


@pytest.mark.parametrize("argv, message", [
    (["--signals", "zprime"], "unknown signal 'zprime': expected one of ato4l, leptoquark"),
    (["--background", "-5"], "must be >= 0, got -5"),
])
def test_bad_generate_arguments_fail_before_work(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--out", str(tmp_path), *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_unwritable_output_and_empty_request_fail_before_work(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["generate", "--out", str(blocker / "sub"), "--signal", "10", "--background", "0"]) == 2
    assert "output directory is not writable" in capsys.readouterr().err
    assert main(["generate", "--out", str(tmp_path / "o"), "--signal", "0", "--background", "0"]) == 2
    assert "nothing to generate" in capsys.readouterr().err


def test_the_cache_key_covers_every_number_of_the_physics_code_and_not_its_comments(tmp_path, monkeypatch):
    """A constant edited in the physics modules (an efficiency, a resolution, the ρ grid, the trigger
    pre-filter) changes every chunk's key and the provenance hash; a comment or docstring does not."""
    import shutil
    import types

    from anomclr_ray.events.generation import detector, runner
    from anomclr_ray.events.generation.runner import Chunk, chunk_key, physics_code

    assert detector in runner.PHYSICS_MODULES
    copy = tmp_path / "detector.py"
    shutil.copy(detector.__file__, copy)
    probe = types.SimpleNamespace(__file__=str(copy))
    monkeypatch.setattr(runner, "PHYSICS_MODULES", (probe,))
    cfg, chunk = GenerationConfig(n_background=100, n_signal=0), Chunk("w", 0, 100)
    base, provenance = chunk_key(cfg, chunk), cfg.config_hash()
    text = copy.read_text()
    edits = {"the efficiency table": ("0.95, np.where(abseta < 2.5, 0.85", "0.94, np.where(abseta < 2.5, 0.85"),
             "a calorimeter resolution": ("(0.05 * e) ** 2 + 1.5**2 * e", "(0.05 * e) ** 2 + 1.6**2 * e"),
             "the rho grid": ("_RHO_N_PHI = 12", "_RHO_N_PHI = 10"),
             "the trigger pre-filter": ("_TRIGGER_PREFILTER = 0.75", "_TRIGGER_PREFILTER = 0.7"),
             "a comment": ("# Stable charged particles", "# Stable, charged particles"),
             "a docstring": ('"""Detector-response parameters', '"""The detector-response parameters')}
    for what, (old, new) in edits.items():
        assert text.count(old) == 1, what
        copy.write_text(text.replace(old, new))
        physics = what not in ("a comment", "a docstring")
        assert (chunk_key(cfg, chunk) != base) == physics, what
        assert (cfg.config_hash() != provenance) == physics, what
    copy.write_text(text)
    assert chunk_key(cfg, chunk) == base and physics_code((probe,)) == physics_code((detector,))
