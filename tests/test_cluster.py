"""cluster/*.yaml validate against Ray's own launcher schema and open nothing to the world."""

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CLUSTER = Path(__file__).resolve().parent.parent / "cluster"
FILES = sorted(CLUSTER.glob("*.yaml"))


def test_both_cluster_files_exist():
    assert {p.name for p in FILES} == {"gpu.yaml", "local.yaml"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_validates_with_rays_schema(path):
    validate_config(prepare_config(yaml.safe_load(path.read_text())))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_a_misspelled_key_is_rejected(path):
    cfg = copy.deepcopy(yaml.safe_load(path.read_text()))
    cfg["head_start_ray_command"] = cfg.pop("head_start_ray_commands")
    with pytest.raises(jsonschema.ValidationError, match="head_start_ray_command"):
        validate_config(prepare_config(cfg))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_dashboard_on_localhost_and_no_open_ports(path):
    text = path.read_text()
    cfg = yaml.safe_load(text)
    assert any("--dashboard-host=127.0.0.1" in c for c in cfg["head_start_ray_commands"])
    assert "0.0.0.0" not in text and "::/0" not in text
    for rule in cfg["provider"].get("security_group", {}).get("IpPermissions", []):
        assert (rule["FromPort"], rule["ToPort"]) == (22, 22)
        assert all(r["CidrIp"].endswith("/32") for r in rule["IpRanges"])
    assert "RAY_AUTH_MODE=disabled" not in text  # token authentication is never switched off
    for cmd in cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"]:
        assert cmd.startswith(("ray stop", "RAY_AUTH_MODE=token ray start", "bash ~/anomclr-ray/cluster/start_tracking.sh"))
    assert "~/.ray/auth_token" in cfg["file_mounts"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_the_head_runs_a_tracking_server_on_private_and_loopback_addresses_and_exports_it(path):
    cfg = yaml.safe_load(path.read_text())
    assert cfg["head_start_ray_commands"][-1] == "bash ~/anomclr-ray/cluster/start_tracking.sh"
    env = "\n".join(cfg["head_setup_commands"])
    assert "export ANOMCLR_STORAGE=" in env and "export MLFLOW_TRACKING_URI=http://$(hostname -I" in env
    server = (CLUSTER / "start_tracking.sh").read_text()
    assert 'for host in $(printf \'%s\\n\' "$private" 127.0.0.1' in server and "0.0.0.0" not in server
    assert '--artifacts-destination "$ANOMCLR_STORAGE/mlartifacts"' in server
