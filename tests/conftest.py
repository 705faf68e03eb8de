import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from anomclr_ray.events import layout as L
from anomclr_ray.events.io import EventFile

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO / "data" / "default"


def pytest_configure(config):
    """Under pytest-xdist every worker gets its own Ray temp dir (`RAY_TMPDIR`, inherited by the Ray
    processes and subprocesses it starts): its own sessions, sockets and `ray_current_cluster`, so a
    `ray start` cluster one worker's test makes is never joined by a study in another worker."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        ray_tmp = Path(tempfile.gettempdir()) / f"ray_{worker}_{os.getppid()}"
        ray_tmp.mkdir(exist_ok=True)
        os.environ["RAY_TMPDIR"] = str(ray_tmp)


# Files whose tests take minutes (Ray Train trials, clusters): scheduled first, so that under xdist
# (`make test`: a file per worker at a time) no long file starts last on one worker while the other idles.
LONGEST_FIRST = ("test_study.py", "test_multinode.py", "test_distributed.py", "test_generation.py",
                 "test_embedding_comparison.py", "test_ray_cluster.py", "test_tracking_server.py")


def pytest_collection_modifyitems(config, items):
    """The longest files first (`LONGEST_FIRST`), then files with other slow tests, then the rest; each
    file's tests stay together and in order (the sort is stable)."""
    slow_files = {item.path.name for item in items if item.get_closest_marker("slow")}

    def rank(item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST) + (name not in slow_files)

    items.sort(key=rank)


def pytest_unconfigure(config):
    """A worker's Ray temp dir (its session logs) goes with it."""
    if os.environ.get("PYTEST_XDIST_WORKER") and "RAY_TMPDIR" in os.environ:
        import shutil
        import sys

        if "ray" in sys.modules and sys.modules["ray"].is_initialized():
            sys.modules["ray"].shutdown()
        shutil.rmtree(os.environ["RAY_TMPDIR"], ignore_errors=True)


@pytest.fixture(scope="session")
def default_data() -> Path:
    return DEFAULT_DATA


@pytest.fixture(scope="session")
def background_sample() -> np.ndarray:
    """2000 real (generated) background events from the shipped default data."""
    with EventFile(DEFAULT_DATA / L.FILE_NAMES[L.BACKGROUND]) as f:
        return f.read(0, 2000)


@pytest.fixture
def local_ray():
    """A plain local Ray on this machine's 2 CPUs, shared by the tests that need one: started by the first
    that asks, then reused (a study run in this process joins it too), restarted after a cluster test
    has shut it down. Tests that need a cluster of their own shut it down first."""
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    return ray


AUC_EXAMPLE = {"ato4l": 0.9, "leptoquark": 0.8, "h_tautau": 0.7, "hc_taunu": 0.6}


def free_port() -> int:
    """A TCP port that nothing listens on, on any address (a port free on loopback only can be another
    process's on the machine's other addresses)."""
    import socket

    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def listening_addresses(port: int) -> set[str]:
    """The addresses with a socket listening on `port`, IPv4 and IPv6 (Linux: /proc/net/tcp, tcp6)."""
    import ipaddress

    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN; the address in 32-bit host-order words
                raw = b"".join(bytes.fromhex(address[i:i + 8])[::-1] for i in range(0, len(address), 8))
                found.add(str(ipaddress.ip_address(raw)))
    return found


def log_synthetic_study(uri: str, name: str, trials: list[dict], tmp: Path, study: dict | None = None) -> str:
    """A study's MLflow records without training: each trial dict gives `params` (flat, as the study logs
    them), `auc` (per-signal AUCs), and optionally `epoch` / `budget` / `probe` (the probe's accuracy) / `metrics`
    (any others); `study`, the parent run's study.yaml (plain data), if any. Returns the experiment id.
    Each call is one execution of the study (a parent run of its own)."""
    import yaml

    from anomclr_ray.method.metrics import roc, save_curves
    from anomclr_ray.report.tracking import STUDY_CONFIG_FILE, experiment_id, log_trial, start_parent_run

    exp = experiment_id(uri, name, (tmp / "mlartifacts").as_uri())
    record = []
    if study is not None:
        record = [tmp / f"study_{name}_{time.time_ns()}" / STUDY_CONFIG_FILE]
        record[0].parent.mkdir(parents=True)
        record[0].write_text(yaml.safe_dump(study))
    parent = start_parent_run(uri, exp, name, {"name": name}, artifacts=record)
    rng = np.random.default_rng(0)
    for i, t in enumerate(trials):
        metrics = {"epoch": t.get("epoch", 2)}
        for sig, a in t["auc"].items():
            metrics |= {f"auc/{sig}": a, f"auc_std/{sig}": 0.01, f"si/{sig}": 2 * a, f"si_std/{sig}": 0.02,
                        f"eb_at_es/{sig}": 1 - a, f"eb_at_es_std/{sig}": 0.01}
        metrics["auc/mean"] = float(np.mean(list(t["auc"].values())))
        metrics["si/mean"] = 2 * metrics["auc/mean"]
        if "probe" in t:
            metrics["probe/accuracy"] = t["probe"]
        metrics |= t.get("metrics", {})
        curves_file = tmp / f"curves_{i}" / "curves.npz"
        curves_file.parent.mkdir(parents=True, exist_ok=True)
        save_curves({s: roc(rng.normal(0, 1, 500), rng.normal(a, 1, 200)) for s, a in t["auc"].items()}, curves_file)
        params = {**t["params"], "train": {"epochs": t.get("budget", 2), **t["params"].get("train", {})}}
        log_trial(uri, exp, parent, f"trial_{i:05d}", f"trial {i}", params, metrics, metrics["epoch"], {},
                  [curves_file], finished=metrics["epoch"] >= params["train"]["epochs"])
    return exp
