"""A study across a two-node Ray cluster on this machine, with nothing mocked: two `ray start` processes
(the head offers no CPU; only the second node offers the custom resource the trials ask for), study
storage in an S3 bucket of a real S3-compatible server on 127.0.0.1 (moto's server mode), tracking
through a real `mlflow server` on 127.0.0.1 whose artifacts go to the same bucket.

The second node runs in its own mount namespace with an empty tmpfs over one directory (`node_local`):
a path there exists for the driver and not for that node, as a head's local disk does not exist for
a cloud worker. Where the test cannot make a mount namespace (not root), the refusals that need it skip.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from conftest import DEFAULT_DATA, free_port
from test_ray_cluster import RAY, _stop_group, start_ray
from test_study import _nested_runs, tiny_study
from test_tracking_server import server_command

from anomclr_ray.train import TrainConfig
from anomclr_ray.report.tracking import NODE_TAG, TRIAL_TAG, client

BUCKET = "anomclr-test"
CPU = torch.device("cpu")
TRIAL_NODE = {"trial_node": 1}
NODE_LOSS_EPOCHS = 5  # the node dies at the first checkpoint; the epochs after it are resumed
TWO_NODE_SPACE = {"method": {"grid": ["ae_raw", "anomclr_plus"]}}
pytestmark = pytest.mark.slow


def _spawn(cmd: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log, "w"), start_new_session=True)


def _wait_serving(proc: subprocess.Popen, port: int, log: Path) -> None:
    """Wait until the server `proc` accepts connections on 127.0.0.1:`port`."""
    deadline = time.time() + 240  # a loaded 2-core machine takes a minute to import mlflow
    while True:
        assert proc.poll() is None and time.time() < deadline, log.read_text()[-2000:]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """{address, tracking, storage, masked, node_local, s3}: everything started for this module, then stopped."""
    import boto3
    import ray

    ray.shutdown()  # earlier tests may have left a local instance in this process
    tmp = tmp_path_factory.mktemp("multinode")
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "RAY_AUTH_MODE": "token"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the servers, both Ray nodes and this driver see the same store
    procs: list[subprocess.Popen] = []
    temp_dir = tempfile.mkdtemp(prefix="ray")  # short: Ray's socket paths live under it
    try:
        # the two servers start while the head does (each start is seconds of imports)
        s3_port, mlflow_port = int(env["AWS_ENDPOINT_URL"].rsplit(":", 1)[1]), free_port()
        procs.append(_spawn([str(Path(RAY).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)],
                            tmp / "moto.log"))
        procs.append(_spawn(server_command(mlflow_port, tmp, f"s3://{BUCKET}/mlartifacts"), tmp / "mlflow.log"))
        node_local = tmp / "node_local"  # seen by the driver and the head, empty on the second node
        (node_local / "data").mkdir(parents=True)
        for f in DEFAULT_DATA.glob("*.h5"):
            (node_local / "data" / f.name).symlink_to(f)
        port = free_port()
        address = f"127.0.0.1:{port}"
        common = ["--block", f"--temp-dir={temp_dir}", "--disable-usage-stats"]
        # the dashboard (on loopback) is the state API that Ray Train's clean-up after a lost node needs
        procs.append(start_ray([RAY, "start", "--head", f"--port={port}", "--num-cpus=0", "--dashboard-host=127.0.0.1",
                                f"--dashboard-port={free_port()}", *common], address, 1, tmp / "head.log", timeout=120))
        _wait_serving(procs[0], s3_port, tmp / "moto.log")
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        _wait_serving(procs[1], mlflow_port, tmp / "mlflow.log")
        worker = [RAY, "start", f"--address={address}", "--num-cpus=2", f"--resources={json.dumps({'trial_node': 100})}",
                  *common]
        masked = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True).returncode == 0
        if masked:
            worker = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                      'mount -t tmpfs tmpfs "$0" && exec "$@"', str(node_local), *worker]
        procs.append(start_ray(worker, address, 2, tmp / "node.log", timeout=120))

        def start_worker() -> subprocess.Popen:  # another second node, as a cloud replaces a lost one
            procs.append(start_ray(worker, address, 2, tmp / f"node{len(procs)}.log", timeout=120))
            return procs[-1]

        yield {"address": address, "tracking": f"http://127.0.0.1:{mlflow_port}", "storage": f"s3://{BUCKET}/runs",
               "masked": masked, "node_local": node_local, "s3": s3, "worker": procs[-1], "start_worker": start_worker}
    finally:
        ray.shutdown()
        for proc in reversed(procs):
            _stop_group(proc)
        shutil.rmtree(temp_dir, ignore_errors=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _study(cluster, tmp_path, **kw):
    base = tiny_study(tmp_path)
    return replace(base, tracking_uri=cluster["tracking"], storage_path=cluster["storage"],
                   scaling=replace(base.scaling, custom_resources=TRIAL_NODE), **kw)


def _study_script(cluster, tmp_path: Path, body: str) -> Path:
    """A driver script for a study on the cluster, run in its own process (so that a test can kill it):
    the imports and the cluster's places, then `body` (which builds `s` with `_study` and runs it)."""
    script = tmp_path / "study.py"
    script.write_text(
        f"import sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\nfrom pathlib import Path\n"
        "from dataclasses import replace\nfrom test_multinode import _study\nfrom anomclr_ray.train import TrainConfig\n"
        "from anomclr_ray.study import run_study\n"
        f"cluster = {{'tracking': {cluster['tracking']!r}, 'storage': {cluster['storage']!r}}}\n" + body)
    return script


def _trial_node_id() -> str:
    import ray

    return next(n["NodeID"] for n in ray.nodes() if n["Alive"] and "trial_node" in n["Resources"])


def test_preflight_refuses_what_only_one_node_would_see(cluster, tmp_path):
    from anomclr_ray.study import run_study

    study = _study(cluster, tmp_path, name="refused")
    with pytest.raises(ValueError, match=r"mlruns.db is a file on this node; on this Ray cluster of 2 nodes"):
        run_study(replace(study, tracking_uri=f"sqlite:///{tmp_path}/mlruns.db"), address=cluster["address"])
    if not cluster["masked"]:
        pytest.skip("no mount namespace (needs root): the node-local path refusals cannot be staged")
    local = cluster["node_local"] / "runs"
    with pytest.raises(ValueError, match=rf"storage {local} is local to this node: 1 of 2 Ray nodes do not see it"):
        run_study(replace(study, storage_path=str(local)), address=cluster["address"])
    data_dir = cluster["node_local"] / "data"
    with pytest.raises(ValueError, match=rf"data file {data_dir}/\S+\.h5: Ray node .* does not see it"):
        run_study(replace(study, data=replace(study.data, data_dir=str(data_dir))), address=cluster["address"])
    assert client(study.tracking_uri).get_experiment_by_name(study.name) is None  # refused before anything started


def test_study_across_two_nodes_with_s3_storage_restores_after_a_kill(cluster, tmp_path):
    """Two trials placed on the second node, AE-Raw and AnomCLR+ side by side; the driver is killed when
    the AE-Raw trial has landed in MLflow, with AnomCLR+'s Train run under way; the same study restored
    from the bucket finishes with every trial exactly once."""
    from anomclr_ray.report.build import build_report
    from anomclr_ray.study import run_study

    study = _study(cluster, tmp_path, name="two_nodes", search_space=TWO_NODE_SPACE,
                   train=TrainConfig(epochs=3, batch_size=100, learning_rate=1e-3))
    script = _study_script(cluster, tmp_path, (
        f"s = _study(cluster, Path({str(tmp_path)!r}), name='two_nodes', search_space={TWO_NODE_SPACE!r},\n"
        "           train=TrainConfig(epochs=3, batch_size=100, learning_rate=1e-3))\n"
        f"run_study(s, address={cluster['address']!r})\n"))
    proc = subprocess.Popen([sys.executable, str(script)], start_new_session=True, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "study.log", "w"))
    deadline, done = time.time() + 300, 0
    while time.time() < deadline and proc.poll() is None and done < 1:
        time.sleep(1)
        try:
            done = len(_nested_runs(study)[0])
        except Exception:  # noqa: BLE001 - the experiment does not exist yet
            continue
    assert proc.poll() is None, "the study process ended early:\n" + (tmp_path / "study.log").read_text()[-3000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert done == 1, f"the kill came too late: {done} trials logged"
    assert not (tmp_path / "runs").exists() and not (tmp_path / "mlruns.db").exists()  # nothing on the driver's disk

    results = run_study(study, address=cluster["address"])  # restores from the bucket
    assert len(results) == 2 and not results.errors
    trials, parents = _nested_runs(study)
    assert len(parents) == 1  # the parent-run record came back from the bucket
    assert sorted(r.data.params["method"] for r in trials) == ["ae_raw", "anomclr_plus"]
    assert len({r.data.tags[TRIAL_TAG] for r in trials}) == 2
    assert {r.data.tags[NODE_TAG] for r in trials} == {_trial_node_id()}  # every trial ran on the second node
    assert all(0 < r.data.metrics["auc/mean"] < 1 for r in trials)
    contrastive = next(r for r in trials if r.data.params["method"] == "anomclr_plus")
    history = client(study.tracking_uri).get_metric_history(contrastive.info.run_id, "train/loss")
    assert sorted(m.step for m in history) == [0, 1, 2]  # resumed or rerun, every epoch once
    keys = [o["Key"] for page in cluster["s3"].get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for o in page.get("Contents", [])]
    assert "runs/two_nodes/tuner.pkl" in keys and "runs/two_nodes.mlflow_parent" in keys
    assert any(k.startswith("runs/two_nodes/train/") and k.endswith("checkpoint.pt") for k in keys)
    assert sum(k.startswith("mlartifacts/") and k.endswith("curves.npz") for k in keys) == 2  # via the server's proxy
    md = build_report(study.tracking_uri, study.name, tmp_path / "report").read_text()
    best = max(r.data.metrics["auc/mean"] for r in trials)
    assert f"auc/mean = {best:.3f}" in md


def test_a_node_killed_mid_trial_is_replaced_and_the_trial_resumes_from_its_checkpoint(cluster, tmp_path):
    """Last in this module: it kills the second node. One AnomCLR+ trial (default dropout 0.1) of 5 epochs,
    a checkpoint every epoch, runs on the second node; once its first checkpoint is in the bucket, that
    node's process group (its raylet, the trial's process and its Train worker) is SIGKILLed, not stopped
    politely, and a fresh node joins 5 s later. Expected: the node and only it died; the study ends 0; one
    MLflow run, FINISHED, with every epoch of train/loss once; and, because batches, views and dropout are
    seeded by (seed, epoch), the loss history of an uninterrupted run (the plain loop, one process)."""
    import ray

    from anomclr_ray.events.dataset import load_dataset
    from anomclr_ray.events.preprocess import Preprocessor
    from anomclr_ray.train import pretrain

    train = TrainConfig(epochs=NODE_LOSS_EPOCHS, batch_size=100, learning_rate=1e-3)
    study = _study(cluster, tmp_path, name="node_loss", search_space={"train.seed": {"grid": [0]}}, train=train)
    study = replace(study, data=replace(study.data, n_train=3000))
    script = _study_script(cluster, tmp_path, (
        "s = _study(cluster, Path('.'), name='node_loss', search_space={'train.seed': {'grid': [0]}},\n"
        f"           train=TrainConfig(epochs={NODE_LOSS_EPOCHS}, batch_size=100, learning_rate=1e-3))\n"
        "s = replace(s, data=replace(s.data, n_train=3000))\n"
        f"r = run_study(s, address={cluster['address']!r})\nsys.exit(1 if r.errors else 0)\n"))
    proc = subprocess.Popen([sys.executable, str(script)], start_new_session=True, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "study.log", "w"))
    try:
        checkpoints = []
        deadline = time.time() + 300
        while not checkpoints and time.time() < deadline and proc.poll() is None:
            time.sleep(0.25)
            page = cluster["s3"].list_objects_v2(Bucket=BUCKET, Prefix="runs/node_loss/train/")
            checkpoints = [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith("checkpoint.pt")]
        assert checkpoints and proc.poll() is None, "no checkpoint before the study ended:\n" + (
            tmp_path / "study.log").read_text()[-3000:]
        victim, alive = _trial_node_id(), {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        worker = cluster["worker"]
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        time.sleep(5)
        cluster["start_worker"]()
        assert proc.wait(timeout=600) == 0, (tmp_path / "study.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    with pytest.raises(ProcessLookupError):
        os.killpg(worker.pid, 0)  # every process of the killed node is gone
    nodes = {n["NodeID"]: n["Alive"] for n in ray.nodes()}
    assert nodes[victim] is False and all(nodes[n] for n in alive - {victim})  # that node died, and only it
    trials, parents = _nested_runs(study)
    assert len(trials) == 1 and trials[0].info.status == "FINISHED" and parents[0].info.status == "FINISHED"
    history = client(study.tracking_uri).get_metric_history(trials[0].info.run_id, "train/loss")
    assert sorted(m.step for m in history) == list(range(NODE_LOSS_EPOCHS))  # every epoch exactly once
    events = load_dataset(study.data).train
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the Train worker (1 CPU): the same float operations in the same order
    try:
        _, uninterrupted = pretrain(events, Preprocessor.fit(events), study.model, study.train, CPU, log=None)
    finally:
        torch.set_num_threads(threads)
    # bit for bit (measured: with 2 threads the plain loop itself drifts from 1e-7 to 3e-3 by epoch 8)
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == uninterrupted
