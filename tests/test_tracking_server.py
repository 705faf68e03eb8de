"""A real MLflow tracking server (`mlflow server` on 127.0.0.1): a study logs to it, the report reads it."""

import subprocess
import sys

import pytest
from conftest import free_port

from anomclr_ray.report.ui import wait_until_up


@pytest.fixture
def mlflow_server(tmp_path):
    port = free_port()
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", f"sqlite:///{tmp_path}/server.db", "--artifacts-destination", str(tmp_path / "served")]
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

    study = replace(tiny_study(tmp_path), tracking_uri=mlflow_server, search_space={"train.mix": {"grid": ["all"]}})
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
