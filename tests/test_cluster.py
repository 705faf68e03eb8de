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
        assert cmd.startswith("ray stop") or cmd.startswith("RAY_AUTH_MODE=token ray start")
    assert "~/.ray/auth_token" in cfg["file_mounts"]
