"""The Grafana dashboard and the Ray custom metrics it reads."""

import json
import re
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO, free_port

from anomclr_ray.infra.monitoring import EXPORTED, prometheus_name

DASHBOARD = REPO / "dashboards" / "anomclr_study.json"


def _exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dash["panels"] for t in p["targets"]]


def test_dashboard_is_a_grafana_dashboard_on_a_prometheus_datasource():
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["title"] and isinstance(dash["schemaVersion"], int)
    assert [v["type"] for v in dash["templating"]["list"]] == ["datasource"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in dash["panels"]:
        assert p["datasource"]["type"] == "prometheus" and p["targets"], p["title"]
        assert {"x", "y", "w", "h"} <= set(p["gridPos"]) and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        for t in p["targets"]:
            assert t["expr"].count("(") == t["expr"].count(")"), t["expr"]


def test_dashboard_queries_exactly_the_metrics_the_code_exports_and_ray_node_metrics():
    used = {name for e in _exprs() for name in re.findall(r"\bray_[a-z_]+", e)}
    ours = {n for n in used if n.startswith("ray_anomclr_")}
    assert ours == {prometheus_name(n) for n in EXPORTED}
    assert {"ray_node_cpu_utilization", "ray_node_mem_used", "ray_node_gpus_utilization"} <= used - ours


@pytest.mark.slow
def test_training_exports_its_metrics_to_rays_prometheus_endpoint(tmp_path):
    """Ray Train pretraining on a local Ray whose metrics are scraped as Prometheus would."""
    port = free_port()
    script = textwrap.dedent(f"""
        import time, urllib.request
        import anomclr_ray, ray
        from anomclr_ray.train.distributed import ScalingSpec, pretrain_distributed
        from anomclr_ray.events.dataset import DataConfig
        from anomclr_ray.method.model import ModelConfig
        from anomclr_ray.train import TrainConfig
        ray.init(address="local", num_cpus=2, include_dashboard=False, _metrics_export_port={port})
        pretrain_distributed(DataConfig(n_train=600, n_test=1, n_test_signal=1), ModelConfig(model_dim=16, heads=2, layers=1),
                             TrainConfig(epochs=3, batch_size=100), ScalingSpec(), {str(tmp_path)!r}, "scraped")
        deadline = time.time() + 60
        while time.time() < deadline:
            text = urllib.request.urlopen("http://127.0.0.1:{port}/metrics").read().decode()
            if "ray_anomclr_train_epoch" in text and 'run="scraped"' in text:
                break
            time.sleep(2)
        print(text)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    samples = {line.split("{")[0]: float(line.rsplit(" ", 1)[1]) for line in out.stdout.splitlines()
               if line.startswith("ray_anomclr_train") and 'run="scraped"' in line}
    assert samples["ray_anomclr_train_epoch"] == 3
    assert samples["ray_anomclr_train_events_total"] == 3 * 600  # 6 batches of 100 per epoch
    assert samples["ray_anomclr_train_loss"] < 0  # AnomCLR+ loss of a trained batch: (s_anom - s_phys) / tau
