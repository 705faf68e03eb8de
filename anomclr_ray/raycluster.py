"""Connecting to Ray: a local instance, or an existing cluster (`address`, e.g. "auto" on a head node).

Token authentication: the package sets RAY_AUTH_MODE=token by default (anomclr_ray/__init__.py); the
token comes from ~/.ray/auth_token or RAY_AUTH_TOKEN.
"""

from __future__ import annotations


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """ray.init unless already connected; returns True when this call started the connection."""
    import ray

    if ray.is_initialized():
        return False
    _follow_auth_mode()
    ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
             log_to_driver=False, configure_logging=False)
    return True


def _follow_auth_mode() -> None:
    """Make Ray use the RAY_AUTH_MODE now in the environment, even when Ray was imported before us."""
    import os

    from ray._raylet import AuthenticationMode, Config, get_authentication_mode

    wants_token = os.environ.setdefault("RAY_AUTH_MODE", "token").lower() == "token"
    if wants_token != (get_authentication_mode() == AuthenticationMode.TOKEN):
        Config.initialize("")  # Ray caches its config at import; this re-reads the environment
