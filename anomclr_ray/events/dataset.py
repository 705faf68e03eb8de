"""Disjoint train / test (/ validation) splits of a data directory, checked before any long job starts."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import layout as L
from .io import EventFile, find_sample_file
from ..errors import ConfigError, DataError

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "default"


@dataclass(frozen=True)
class DataConfig:
    """Background events [0, n_train) train the encoder; the next n_ae train the AE (and the linear
    probe) on their representations, or with n_ae = 0 the AE trains on the encoder's events, as the
    papers do. The next n_test background events and the first n_test_signal events of each signal are
    the test set. An optional validation set, for choosing hyper-parameters without looking at the test
    signals, follows: the next n_val background events and the next n_val_signal events of each signal."""

    data_dir: str = str(DEFAULT_DATA_DIR)
    n_train: int = 50_000
    n_test: int = 20_000
    n_test_signal: int = 10_000
    signals: tuple[str, ...] = L.SIGNALS
    n_val: int = 0
    n_val_signal: int = 0
    n_ae: int = 0

    def __post_init__(self):
        if self.n_train < 1 or self.n_test < 1 or self.n_test_signal < 1 or self.n_ae < 0:
            raise ConfigError(f"DataConfig: event counts must be >= 1 (n_ae >= 0), got n_train={self.n_train}, "
                             f"n_ae={self.n_ae}, n_test={self.n_test}, n_test_signal={self.n_test_signal}")
        if self.n_val < 0 or self.n_val_signal < 0 or (self.n_val == 0) != (self.n_val_signal == 0):
            raise ConfigError(f"DataConfig: a validation set needs both n_val and n_val_signal >= 1 (or both 0 for "
                             f"none), got n_val={self.n_val}, n_val_signal={self.n_val_signal}")
        for s in self.signals:
            if s not in L.SIGNALS:
                raise ConfigError(f"DataConfig: unknown signal {s!r}: expected one of {', '.join(L.SIGNALS)}")

    @property
    def has_validation(self) -> bool:
        return self.n_val > 0

    @property
    def n_ae_train(self) -> int:
        """How many events the AE trains on."""
        return self.n_ae or self.n_train


# The reproduction size's split (study_script.SIZES, anomclr nplm's default, the NPLM benchmark): declared once.
REPRODUCTION_SPLIT = {"n_train": 60_000, "n_test": 40_000, "n_test_signal": 10_000}


def with_validation(cfg: DataConfig, fraction: float = 0.25) -> DataConfig:
    """The same events, with `fraction` of the test background and of each test signal set aside as
    validation (for an objective that must not see the test signals)."""
    n_val, n_val_signal = round(cfg.n_test * fraction), round(cfg.n_test_signal * fraction)
    return replace(cfg, n_test=cfg.n_test - n_val, n_val=n_val,
                   n_test_signal=cfg.n_test_signal - n_val_signal, n_val_signal=n_val_signal)


@dataclass
class Dataset:
    train: np.ndarray  # (n_train, 19, 4) background: the encoder's
    test_background: np.ndarray
    test_signals: dict[str, np.ndarray] = field(default_factory=dict)
    val_background: np.ndarray | None = None  # None without a validation set
    val_signals: dict[str, np.ndarray] = field(default_factory=dict)
    train_labels: np.ndarray | None = None  # (n_train,) process labels W 0, QCD 1, Z 2, ttbar 3, if the file has them
    test_labels: np.ndarray | None = None  # (n_test,) the same for the test background
    ae_train: np.ndarray | None = None  # (n_ae, 19, 4) background the AE trains on; None: `train`
    ae_labels: np.ndarray | None = None

    @property
    def ae_events(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(events, process labels or None) the AE and the linear probe train on."""
        return (self.train, self.train_labels) if self.ae_train is None else (self.ae_train, self.ae_labels)


def data_files(cfg: DataConfig) -> list[Path]:
    """The files a data config reads: the background, then each signal."""
    return [find_sample_file(cfg.data_dir, s) for s in (L.BACKGROUND, *cfg.signals)]


def check_data(cfg: DataConfig, labels: str | None = None) -> None:
    """Files exist, have the layout and hold enough events: fails fast, reads no events. `labels` names
    what needs the background's process labels (e.g. "train.loss supcon"): then the file must hold them."""
    need = {L.BACKGROUND: cfg.n_train + cfg.n_ae + cfg.n_test + cfg.n_val,
            **{s: cfg.n_test_signal + cfg.n_val_signal for s in cfg.signals}}
    for sample, n in need.items():
        with EventFile(find_sample_file(cfg.data_dir, sample)) as f:
            if len(f) < n:
                raise DataError(f"{f.where}: holds {len(f)} events, the data config needs {n}")
            if labels and sample == L.BACKGROUND and f.labels(0, 1) is None:
                raise DataError(f"{f.where}: no {L.LABELS_KEY!r} dataset, but {labels} needs the background process "
                                 f"labels (W 0, QCD 1, Z 2, ttbar 3; the published ADC2021 files have none)")


def load_dataset(cfg: DataConfig) -> Dataset:
    """Read and check the splits (float32, physical units)."""
    check_data(cfg)
    test0 = cfg.n_train + cfg.n_ae
    n_bkg = test0 + cfg.n_test
    with EventFile(find_sample_file(cfg.data_dir, L.BACKGROUND)) as f:
        data = Dataset(f.read(0, cfg.n_train), f.read(test0, n_bkg),
                       train_labels=f.labels(0, cfg.n_train), test_labels=f.labels(test0, n_bkg))
        if cfg.n_ae:
            data.ae_train, data.ae_labels = f.read(cfg.n_train, test0), f.labels(cfg.n_train, test0)
        if cfg.has_validation:
            data.val_background = f.read(n_bkg, n_bkg + cfg.n_val)
    for s in cfg.signals:
        with EventFile(find_sample_file(cfg.data_dir, s)) as f:
            data.test_signals[s] = f.read(0, cfg.n_test_signal)
            if cfg.has_validation:
                data.val_signals[s] = f.read(cfg.n_test_signal, cfg.n_test_signal + cfg.n_val_signal)
    return data
