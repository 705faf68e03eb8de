"""The companion method's study end to end through Ray Tune + Ray Train + MLflow: its supervised method (with
the process labels) x both encoders at one embedding dimension, the AE-Raw baseline once, the linear probe,
NPLM's power, the comparison report. (SimCLR, SupCon and VICReg train in tests/test_pretrain.py, their DDP
gradients are tests/test_ddp_gradients.py's; the report's lines per method x encoder against the dimension
are tests/test_report.py's, from logged runs.)"""

import subprocess
import sys

import pytest
from conftest import REPO

from anomclr_ray.report.build import read_trials


@pytest.mark.slow
def test_embedding_comparison_runs_its_methods_and_encoders_with_probe_and_nplm(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    out = subprocess.run([sys.executable, str(REPO / "studies" / "embedding_comparison.py"), "--smoke", "--dims", "4",
                          "--methods", "supcon", "--encoders", "mlp", "transformer",
                          "--tracking-uri", uri, "--storage", str(tmp_path / "runs"), "--reports", str(tmp_path / "rep"),
                          "--set", "data.n_train=600", "data.n_test=600", "data.n_test_signal=300", "train.epochs=1",
                          "score.epochs=1", "score.nplm.n_reference=300", "score.nplm.n_background=100",
                          "score.nplm.centres=50", "score.nplm.toys=2", "score.nplm.null_toys=10"], capture_output=True, text=True, timeout=2400, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    trials = read_trials(uri, "embedding_comparison_smoke")
    runs = sorted((t.method, t.params["model.kind"], t.params["model.embedding_dim"]) for t in trials if t.method != "ae_raw")
    assert runs == [("supcon", "mlp", "4"), ("supcon", "transformer", "4")]
    assert [t.method for t in trials].count("ae_raw") == 1
    assert all(0.25 < t.metrics["probe/accuracy"] <= 1 and 0 < t.metrics["auc/mean"] < 1 for t in trials)
    assert all(0 <= t.metrics[f"nplm_power/{s}/{f}"] <= 1 and t.metrics["nplm/null_dof"] > 0 for t in trials
               for s in ("ato4l", "hc_taunu") for f in ("0.001", "0.01"))
    md = (tmp_path / "rep" / "embedding_comparison_smoke" / "report.md").read_text()
    assert "probe/accuracy" in md
    assert "(nplm_power.png)" in md and (tmp_path / "rep" / "embedding_comparison_smoke" / "nplm_power.png").exists()
