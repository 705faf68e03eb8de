"""Connecting to Ray: a local instance, or an existing cluster (`address`, e.g. "auto" on a head node),
and the checks a study makes of a cluster before any trial starts.

Token authentication: the package sets RAY_AUTH_MODE=token by default (anomclr_ray/__init__.py); the
token comes from ~/.ray/auth_token or RAY_AUTH_TOKEN. A cluster started without it accepts the
driver's tasks but cancels its actors (every trial) before they run: `connect` detects that at once.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from pathlib import Path

from .storage import STORAGE_ENV, Storage
from ..errors import ClusterError, ServiceError

log = logging.getLogger(__name__)


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """ray.init unless already connected; returns True when this call started the connection.

    Without `address`: the cluster in RAY_ADDRESS, else the one the last `ray start` on this machine
    recorded if it still answers, else a new local instance with `num_cpus` (`ray.init(address="auto")`
    semantics, without failing on a stale record left by a killed `ray start`)."""
    import ray

    if ray.is_initialized():
        return False
    _follow_auth_mode()
    if address is None:
        address = os.environ.get("RAY_ADDRESS") or _recorded_cluster() or "local"
    ray.init(address=address, num_cpus=num_cpus if address == "local" else None, include_dashboard=False,
             log_to_driver=False, configure_logging=False)
    if address != "local":
        _check_actors_start(address)
    return True


def _check_actors_start(address: str) -> None:
    """Start one tiny actor: on a cluster whose auth mode differs from the driver's it is cancelled."""
    import ray

    @ray.remote(num_cpus=0)
    class Ping:
        def ping(self) -> bool:
            return True

    try:
        ray.get(Ping.remote().ping.remote(), timeout=120)
    except (ray.exceptions.ActorDiedError, ray.exceptions.GetTimeoutError) as err:
        mode = os.environ.get("RAY_AUTH_MODE", "token")
        ray.shutdown()
        raise ServiceError(
            f"Ray cluster at {address} cancels this driver's actors, so no trial could run; the usual cause is "
            f"an authentication mismatch: this driver uses RAY_AUTH_MODE={mode}. Start the cluster with "
            f"RAY_AUTH_MODE={mode} (as cluster/*.yaml do), or run the driver with the cluster's mode "
            f"(RAY_AUTH_MODE=disabled for a cluster without tokens). Ray said: {str(err).splitlines()[0]}") from None


def _recorded_cluster() -> str | None:
    """The GCS address `ray start` wrote to /tmp/ray/ray_current_cluster, if something listens there."""
    from ray._private.utils import get_ray_address_file, read_ray_address

    address = read_ray_address()
    if not address:
        return None
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except (OSError, ValueError):
        log.warning("ignoring %s: nothing answers at %s (a `ray start` that was killed); starting a local Ray",
                    get_ray_address_file(None), address)
        return None
    return address


def _follow_auth_mode() -> None:
    """Make Ray use the RAY_AUTH_MODE now in the environment, even when Ray was imported before us."""
    from ray._raylet import AuthenticationMode, Config, get_authentication_mode

    wants_token = os.environ.setdefault("RAY_AUTH_MODE", "token").lower() == "token"
    if wants_token != (get_authentication_mode() == AuthenticationMode.TOKEN):
        Config.initialize("")  # Ray caches its config at import; this re-reads the environment


def alive_nodes() -> list[dict]:
    import ray

    return [n for n in ray.nodes() if n["Alive"]]


def _file_sizes(paths: list[str]) -> list[int]:
    """Each file's size as this node sees it, -1 where it sees none."""
    return [os.path.getsize(p) if os.path.isfile(p) else -1 for p in paths]


def sizes_on_every_node(paths: list[str]) -> dict[str, list[int]]:
    """{node: sizes of `paths` as that node sees them}, from one zero-CPU Ray task pinned to each node."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0)(_file_sizes)
    nodes = alive_nodes()
    refs = [probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(paths)
            for n in nodes]
    return {f"{n['NodeManagerAddress']} ({n['NodeID'][:8]})": sizes for n, sizes in zip(nodes, ray.get(refs, timeout=300))}


def check_state_api(n_nodes: int) -> None:
    """Ray Train frees the CPUs of a trial whose Train controller died with its node only through the
    cluster's state API (its placement-group cleaner asks it whether the controller lives): without it
    those CPUs stay reserved on the replacement node and the retried trials wait for ever (measured with
    studies/chaos.py). The state API is the head's dashboard process."""
    import ray
    from ray.util.state import list_nodes
    from ray.util.state.exception import RayStateApiException

    try:  # this cluster's (another Ray on the machine must not be asked)
        list_nodes(address=ray.get_runtime_context().gcs_address, limit=1, timeout=20, raise_on_missing_output=False)
    except RayStateApiException:
        raise ClusterError(
            f"this Ray cluster of {n_nodes} nodes runs without its state API (the dashboard): after a lost node Ray "
            "Train could not free the lost trials' resources and the study would hang. Start the head with the "
            "dashboard on loopback, e.g. `ray start --head --dashboard-host=127.0.0.1` (cluster/*.yaml do)") from None


def check_cluster(storage: Storage, tracking_uri: str, data_files: list[Path]) -> None:
    """On a cluster of several nodes, refuse what only one node would see, before any trial starts:
    a local tracking store (SQLite or file), a storage path some node does not see, and data files some
    node does not see (or sees with another size); and a cluster without its state API (`check_state_api`)."""
    n_nodes = len(alive_nodes())
    if n_nodes < 2:
        return
    check_state_api(n_nodes)
    scheme = tracking_uri.partition(":")[0] if ":" in tracking_uri else "file"
    if scheme in ("sqlite", "file"):
        raise ClusterError(f"MLflow tracking URI {tracking_uri} is a file on this node; on this Ray cluster of {n_nodes} "
                         f"nodes trials elsewhere cannot write to it. Set --tracking-uri (or MLFLOW_TRACKING_URI) to "
                         f"a tracking server, e.g. http://<head private IP>:5000 (cluster/*.yaml start one and export it)")
    marker = None
    if storage.is_local:
        marker = Path(storage.uri) / f".anomclr_probe_{uuid.uuid4().hex}"
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("seen")
    wanted = {str(f): f.stat().st_size for f in data_files}
    try:
        seen = sizes_on_every_node([*wanted, *([str(marker)] if marker else [])])
    finally:
        if marker:
            marker.unlink()
    if marker:
        blind = [node for node, sizes in seen.items() if sizes[-1] < 0]
        if blind:
            raise ClusterError(f"storage {storage.uri} is local to this node: {len(blind)} of {n_nodes} Ray nodes do not "
                             f"see it ({', '.join(blind)}). Set --storage (or {STORAGE_ENV}) to s3://bucket/prefix, "
                             f"gs://bucket/prefix, or a path every node mounts (NFS)")
    for node, sizes in seen.items():
        for (path, size), theirs in zip(wanted.items(), sizes):
            if theirs != size:
                raise ClusterError(f"data file {path}: Ray node {node} " + (
                    "does not see it" if theirs < 0 else f"sees {theirs} bytes, this node {size}")
                    + "; give every node the same data directory (file_mounts in cluster/*.yaml, or a shared path)")
