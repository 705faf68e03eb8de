"""The one place a device is chosen (the CLI, the studies and the benchmarks call it)."""

from __future__ import annotations

import torch

from ..errors import ConfigError


def choose_device(name: str = "auto") -> torch.device:
    """The one place a device is chosen: CUDA when present (or asked for), else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but CUDA is not available here")
    return torch.device(name)
