"""Disjoint train / test splits of a data directory, checked before any long job starts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import layout as L
from .io import EventFile, find_sample_file

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "default"


@dataclass(frozen=True)
class DataConfig:
    """Background events [0, n_train) train the encoder and the AE; [n_train, n_train + n_test) and the
    first n_test_signal events of each signal are the test set."""

    data_dir: str = str(DEFAULT_DATA_DIR)
    n_train: int = 50_000
    n_test: int = 20_000
    n_test_signal: int = 10_000
    signals: tuple[str, ...] = L.SIGNALS

    def __post_init__(self):
        if self.n_train < 1 or self.n_test < 1 or self.n_test_signal < 1:
            raise ValueError(f"DataConfig: event counts must be >= 1, got n_train={self.n_train}, "
                             f"n_test={self.n_test}, n_test_signal={self.n_test_signal}")
        for s in self.signals:
            if s not in L.SIGNALS:
                raise ValueError(f"DataConfig: unknown signal {s!r}: expected one of {', '.join(L.SIGNALS)}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["signals"] = list(self.signals)
        return d


@dataclass
class Dataset:
    train: np.ndarray  # (n_train, 19, 4) background
    test_background: np.ndarray
    test_signals: dict[str, np.ndarray] = field(default_factory=dict)


def check_data(cfg: DataConfig) -> None:
    """Files exist, have the layout and hold enough events: fails fast, reads no events."""
    need = {L.BACKGROUND: cfg.n_train + cfg.n_test, **{s: cfg.n_test_signal for s in cfg.signals}}
    for sample, n in need.items():
        with EventFile(find_sample_file(cfg.data_dir, sample)) as f:
            if len(f) < n:
                raise ValueError(f"{f.where}: holds {len(f)} events, the data config needs {n}")


def load_dataset(cfg: DataConfig) -> Dataset:
    """Read and check the splits (float32, physical units)."""
    check_data(cfg)
    with EventFile(find_sample_file(cfg.data_dir, L.BACKGROUND)) as f:
        train = f.read(0, cfg.n_train)
        test = f.read(cfg.n_train, cfg.n_train + cfg.n_test)
    signals = {}
    for s in cfg.signals:
        with EventFile(find_sample_file(cfg.data_dir, s)) as f:
            signals[s] = f.read(0, cfg.n_test_signal)
    return Dataset(train, test, signals)
