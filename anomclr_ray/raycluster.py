"""Connecting to Ray: a local instance, or an existing cluster (`address`, e.g. "auto" on a head node).

Token authentication: the package sets RAY_AUTH_MODE=token by default (anomclr_ray/__init__.py); the
token comes from ~/.ray/auth_token or RAY_AUTH_TOKEN.
"""

from __future__ import annotations

import logging
import os
import socket

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
    return True


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
