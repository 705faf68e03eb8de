"""The study runs against an existing `ray start --head` cluster (token authentication on)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import ray

from anomclr_ray.study import run_study
from test_study import _nested_runs, tiny_study

RAY = str(Path(sys.executable).parent / "ray")
PORT = 6391


@pytest.mark.slow
def test_study_runs_on_a_ray_start_cluster(tmp_path):
    ray.shutdown()  # earlier tests may have left a local instance in this process
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    subprocess.run([RAY, "start", "--head", f"--port={PORT}", "--num-cpus=2", "--include-dashboard=false",
                    "--disable-usage-stats"], env=env, check=True, capture_output=True)
    try:
        study = tiny_study(tmp_path)
        results = run_study(study, address=f"127.0.0.1:{PORT}")
        assert ray.get_runtime_context().gcs_address.endswith(f":{PORT}")  # used the cluster, not a new one
        assert len(results) == 2 and not results.errors
        assert len(_nested_runs(study)[0]) == 2
    finally:
        ray.shutdown()
        subprocess.run([RAY, "stop", "--force"], capture_output=True)
