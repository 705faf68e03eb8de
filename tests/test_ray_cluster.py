"""The study runs against an existing `ray start --head` cluster (token authentication on); without an
address, scripts join the cluster `ray start` recorded, or start their own when that record is stale."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest
import ray

from anomclr_ray.study import run_study
from conftest import free_port
from test_study import _nested_runs, tiny_study

RAY = str(Path(sys.executable).parent / "ray")
PORT = 6391
READY = "Ray runtime started."  # what `ray start` prints once its node runs


def _stop_group(proc: subprocess.Popen) -> None:
    """Stop the head started by this test and everything it spawned (its process group): unlike
    `ray stop`, this leaves any other Ray on the machine alone."""
    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        proc.poll()  # reap the leader, so that a finished group stops answering signal 0
        deadline = time.time() + grace
        while time.time() < deadline:  # until the whole group has exited, at most `grace` seconds
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            proc.poll()
            time.sleep(0.2)


def start_ray(cmd: list[str], address: str, nodes: int, log: Path, env: dict | None = None,
              timeout: float = 90) -> subprocess.Popen:
    """Start `ray start ... --block` in its own process group and wait until the cluster at `address`
    answers with `nodes` nodes. Its processes know their cluster (RAY_ADDRESS): what Ray Train's
    placement-group cleaner asks is found by auto-detection, which with several Rays on the machine
    (the tests', xdist's) errs or picks the last one started."""
    env = {**(env or os.environ), "RAY_ADDRESS": address}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    deadline = time.time() + timeout
    started = False
    while True:
        # `ray status` is a second or more of CPU: asked only once the node says it runs
        started = started or READY in log.read_text()
        if started:
            out = subprocess.run([RAY, "status", f"--address={address}"], env=env, capture_output=True, text=True)
            if out.returncode == 0 and out.stdout.count("node_") >= nodes:
                return proc
        if time.time() > deadline or proc.poll() is not None:
            _stop_group(proc)
            raise AssertionError(log.read_text()[-2000:])
        time.sleep(1 if started else 0.25)


@pytest.mark.slow
def test_study_runs_on_a_ray_start_cluster(tmp_path):
    ray.shutdown()  # earlier tests may have left a local instance in this process
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    temp_dir = tempfile.mkdtemp(prefix="ray")  # short (socket paths), and keeps /tmp/ray/ray_current_cluster untouched
    head = start_ray([RAY, "start", "--head", "--block", f"--port={PORT}", "--num-cpus=2", f"--temp-dir={temp_dir}",
                      "--include-dashboard=false", "--disable-usage-stats"], f"127.0.0.1:{PORT}", 1,
                     tmp_path / "head.log", env)
    try:
        # one trial: the studies of several nodes, their kills and restores are test_multinode.py's
        study = replace(tiny_study(tmp_path), search_space={"train.mix": {"grid": ["ao"]}})
        results = run_study(study, address=f"127.0.0.1:{PORT}")
        assert ray.get_runtime_context().gcs_address.endswith(f":{PORT}")  # used the cluster, not a new one
        assert len(results) == 1 and not results.errors
        assert len(_nested_runs(study)[0]) == 1
    finally:
        ray.shutdown()
        _stop_group(head)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.mark.slow
def test_a_stale_cluster_record_starts_a_local_instance():
    """A killed `ray start` leaves its address in ray_current_cluster: connect() must not try to join it."""
    ray_tmp = Path(tempfile.mkdtemp(prefix="ray"))  # short: Ray's socket paths live under it
    (ray_tmp / "ray").mkdir()
    (ray_tmp / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{free_port()}")  # nothing listens there
    script = textwrap.dedent("""
        import ray
        from anomclr_ray.infra.raycluster import connect
        assert connect(num_cpus=1)
        print("CPUS", ray.cluster_resources()["CPU"])
    """)
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp)}
    env.pop("RAY_ADDRESS", None)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=180)
    shutil.rmtree(ray_tmp, ignore_errors=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "CPUS 1.0" in out.stdout
    assert "nothing answers at 127.0.0.1" in out.stderr


@pytest.mark.slow
def test_an_auth_mode_mismatch_is_named_at_connect(tmp_path):
    """A cluster started without token authentication cancels a token driver's actors (every trial):
    connect() says so before a study starts, naming the setting to change."""
    from anomclr_ray.infra.raycluster import connect

    ray.shutdown()
    temp_dir = tempfile.mkdtemp(prefix="ray")
    port = free_port()
    head = start_ray([RAY, "start", "--head", "--block", f"--port={port}", "--num-cpus=1", f"--temp-dir={temp_dir}",
                      "--include-dashboard=false", "--disable-usage-stats"], f"127.0.0.1:{port}", 1,
                     tmp_path / "head.log", {**os.environ, "RAY_AUTH_MODE": "disabled"})
    try:
        with pytest.raises(ConnectionError, match="authentication mismatch: this driver uses RAY_AUTH_MODE=token. "
                                                  "Start the cluster with RAY_AUTH_MODE=token"):
            connect(f"127.0.0.1:{port}")
        assert not ray.is_initialized()
    finally:
        ray.shutdown()
        _stop_group(head)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_a_cluster_without_its_state_api_is_refused(local_ray):
    """The suite's local Ray runs without a dashboard, so without the state API that Ray Train's clean-up
    after a lost node asks: on a cluster of several nodes the preflight refuses it, naming the fix."""
    from anomclr_ray.errors import ClusterError
    from anomclr_ray.infra.raycluster import check_state_api

    with pytest.raises(ClusterError, match=r"cluster of 3 nodes runs without its state API .*--dashboard-host=127.0.0.1"):
        check_state_api(3)
