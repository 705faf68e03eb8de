"""A real MLflow tracking server (`mlflow server` on 127.0.0.1): a study logs to it, the report reads it."""

import os
import subprocess
import sys

import pytest
from conftest import free_port

from anomclr_ray.report.ui import wait_until_up


def server_command(port: int, tmp_path, artifacts: str | None = None) -> list[str]:
    """An `mlflow server` on 127.0.0.1 with its store in `tmp_path` and its artifacts in `artifacts` (default
    `tmp_path`/served), one worker process (MLflow's default 4 take twice as long to start here)."""
    return [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{tmp_path}/server.db",
            "--artifacts-destination", artifacts or str(tmp_path / "served")]


@pytest.fixture
def mlflow_server(tmp_path):
    port = free_port()
    cmd = server_command(port, tmp_path)
    with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "server.log", "w")) as proc:
        try:
            wait_until_up("127.0.0.1", port, proc)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(30)


@pytest.mark.slow
def test_study_logs_to_a_tracking_server_and_the_report_reads_it_back(tmp_path, mlflow_server):
    from dataclasses import replace

    from test_study import _nested_runs, tiny_study

    from anomclr_ray.report.build import build_report
    from anomclr_ray.study import run_study

    # one AE-Raw trial (no Ray Train run): what is checked is the logging through the server
    study = replace(tiny_study(tmp_path), tracking_uri=mlflow_server, search_space={"method": {"grid": ["ae_raw"]}})
    results = run_study(study)
    assert len(results) == 1 and not results.errors
    trials, parents = _nested_runs(study)
    assert len(trials) == 1 and len(parents) == 1 and 0 < trials[0].data.metrics["auc/mean"] < 1
    # artifacts went through the server's artifact proxy into its destination, not to a local path of ours
    assert list((tmp_path / "served").rglob("curves.npz"))
    assert not (tmp_path / "runs" / "mlartifacts").exists()
    md = build_report(mlflow_server, study.name, tmp_path / "report").read_text()
    assert f"auc/mean = {trials[0].data.metrics['auc/mean']:.3f}" in md
    assert (tmp_path / "report" / "roc.png").stat().st_size > 20_000


@pytest.mark.slow
def test_a_trial_logs_through_a_tracking_server_outage_longer_than_mlflows_retries(tmp_path, monkeypatch):
    """The server SIGKILLed and started again on the same port and store 3 s later (down 3 s and its start,
    10 s or more), with MLflow's own HTTP retries cut to about 3 s (so that the outage outlasts them, as a
    longer one outlasts the default few minutes): the trial's logging waits, then lands once, complete; no
    ghost or duplicate run."""
    import signal
    import threading
    import time

    from anomclr_ray.report.tracking import client, experiment_id, log_trial, start_parent_run

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    port = free_port()
    cmd = server_command(port, tmp_path)
    servers = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "server.log", "w"),
                                start_new_session=True)]
    try:
        wait_until_up("127.0.0.1", port, servers[0], timeout=240)  # a loaded 2-core machine: a minute or more
        uri = f"http://127.0.0.1:{port}"
        exp = experiment_id(uri, "outage")
        parent = start_parent_run(uri, exp, "outage", {"name": "outage"})
        os.killpg(servers[0].pid, signal.SIGKILL)
        servers[0].wait()

        def restart():
            time.sleep(3)
            servers.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "server2.log", "w"),
                                            start_new_session=True))

        threading.Thread(target=restart, daemon=True).start()
        t0 = time.monotonic()
        log_trial(uri, exp, parent, "t0", "trial 0", {"train": {"mix": "ao"}}, {"auc/mean": 0.7}, 2,
                  {"train/loss": {0: 1.0, 1: 0.5}}, [], finished=True)
        waited = time.monotonic() - t0
        runs = [r for r in client(uri).search_runs([exp]) if r.info.run_id != parent]
        assert waited > 6 and len(runs) == 1 and runs[0].info.status == "FINISHED"  # waited out the retries
        assert runs[0].data.params == {"train.mix": "ao"} and runs[0].data.metrics == {"auc/mean": 0.7, "train/loss": 0.5}
        print(f"the trial's logging waited {waited:.0f} s for the server")
    finally:
        for proc in servers:  # the servers this test started, by their process groups
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                    proc.wait(20)
                    break
                except ProcessLookupError:
                    break
                except subprocess.TimeoutExpired:
                    continue
