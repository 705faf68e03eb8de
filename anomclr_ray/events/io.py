"""Read and write ADC2021 HDF5 files exactly as published, plus our provenance and process labels."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from . import layout as L
from .validate import EventValidationError, check_dataset_layout, check_events
from ..errors import DataError, MissingFileError


def find_sample_file(data_dir: str | Path, sample: str) -> Path:
    """Path of `sample`'s file in `data_dir` (published name or its `_filtered` variant)."""
    data_dir = Path(data_dir)
    names = L.candidate_file_names(sample)
    for name in names:
        if (data_dir / name).is_file():
            return data_dir / name
    raise MissingFileError(f"{data_dir}: no file for sample {sample!r} (expected one of {', '.join(names)})")


class EventFile:
    """A lazily read ADC2021 file: slicing reads only the asked-for events from disk.

    >>> with EventFile(path) as f:
    ...     x = f.read(0, 1000)        # (1000, 19, 4) float32, checked
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._h5 = h5py.File(self.path, "r")
        except FileNotFoundError:
            raise MissingFileError(f"{self.path}: no such file") from None
        except OSError as err:
            raise EventValidationError(f"{self.path}: not a readable HDF5 file ({err})") from None
        if L.PARTICLES_KEY not in self._h5:
            keys = ", ".join(self._h5.keys()) or "none"
            self._h5.close()
            raise EventValidationError(f"{self.path}: no dataset '{L.PARTICLES_KEY}' (found: {keys})")
        self.particles = self._h5[L.PARTICLES_KEY]
        check_dataset_layout(self.particles, self.where)

    @property
    def where(self) -> str:
        return f"{self.path}:{L.PARTICLES_KEY}"

    def __len__(self) -> int:
        return self.particles.shape[0]

    def __enter__(self) -> "EventFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._h5.close()

    @property
    def attrs(self) -> dict[str, Any]:
        return {k: _decode(v) for k, v in self._h5.attrs.items()}

    def read(self, start: int = 0, stop: int | None = None, *, check: bool = True) -> np.ndarray:
        """Events [start, stop) as float32 (n, 19, 4); checked against the layout rules."""
        stop = len(self) if stop is None else min(stop, len(self))
        x = np.asarray(self._read(self.particles, start, stop, self.where), dtype=np.float32)
        if check:
            check_events(x, self.where, start)
        return x

    def labels(self, start: int = 0, stop: int | None = None) -> np.ndarray | None:
        """Per-event background process labels (W 0, QCD 1, Z 2, ttbar 3), or None if absent."""
        if L.LABELS_KEY not in self._h5:
            return None
        return np.asarray(self._read(self._h5[L.LABELS_KEY], start, stop, f"{self.path}:{L.LABELS_KEY}"))

    @staticmethod
    def _read(dataset: h5py.Dataset, start: int, stop: int | None, where: str) -> np.ndarray:
        """A slice of a dataset; a corrupt chunk (a damaged file) is the user's data error, naming it."""
        try:
            return dataset[start:stop]
        except OSError as err:
            raise EventValidationError(f"{where}: events {start}..{stop}: unreadable, the file is damaged ({err})") from None


def read_samples(data_dir: str | Path, max_events: int) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """The first `max_events` events of each sample file present in `data_dir`, unchecked, with their
    process labels where the file has them: {sample: ((N, 19, 4), (N,) or None)}."""
    out = {}
    for sample in L.SAMPLES:
        try:
            path = find_sample_file(data_dir, sample)
        except FileNotFoundError:
            continue
        with EventFile(path) as f:
            n = min(len(f), max_events)
            out[sample] = (f.read(0, n, check=False), f.labels(0, n))
    return out


def load_events(path: str | Path, n: int | None = None, start: int = 0) -> np.ndarray:
    """Read `n` events from `start` (all if None) as checked float32 (n, 19, 4)."""
    with EventFile(path) as f:
        if start >= len(f):
            raise DataError(f"{f.where}: start {start} is beyond its {len(f)} events")
        return f.read(start, None if n is None else start + n)


def write_events(
    path: str | Path,
    particles: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    attrs: dict[str, Any] | None = None,
    dtype: type = np.float32,
) -> Path:
    """Write an ADC2021 file atomically (temporary name, then rename): gzip + shuffle compressed.

    `particles` (N, 19, 4) is checked first; `labels` (N,) int are per-event process labels;
    `attrs` (provenance) are stored as file attributes, non-scalars as JSON.
    """
    path = Path(path)
    particles = np.asarray(particles)
    check_events(particles, f"{path}:{L.PARTICLES_KEY}", selection=False)
    if labels is not None and labels.shape != (particles.shape[0],):
        raise DataError(f"{path}:{L.LABELS_KEY}: shape {labels.shape}, expected ({particles.shape[0]},)")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    opts = dict(compression="gzip", compression_opts=6, shuffle=True, track_times=False)  # reproducible bytes
    chunk_rows = max(1, min(len(particles), 8192))
    try:
        with h5py.File(tmp, "w") as f:
            f.create_dataset(L.PARTICLES_KEY, data=particles.astype(dtype), chunks=(chunk_rows, L.N_SLOTS, L.N_FEATURES), **opts)
            f.create_dataset(L.CLASSES_KEY, data=np.array(L.PARTICLE_CLASSES, dtype="S"), track_times=False)
            f.create_dataset(L.NAMES_KEY, data=np.array(L.PARTICLE_NAMES, dtype="S"), track_times=False)
            if labels is not None:
                f.create_dataset(L.LABELS_KEY, data=labels.astype(np.int8), chunks=(min(len(labels), 65536),), **opts)
            for k, v in (attrs or {}).items():
                f.attrs[k] = v if isinstance(v, (str, int, float, np.integer, np.floating)) else json.dumps(v)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _decode(v: Any) -> Any:
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, str) and v[:1] in "[{":
        try:
            return json.loads(v)
        except json.JSONDecodeError:
            return v
    return v
