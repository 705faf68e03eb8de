"""Checks that an array or file really is an ADC2021 event set. Errors name file, dataset, event, rule.

All checks are vectorised over a chunk of events; `validate_file` streams a file chunk by chunk so
files larger than memory are fine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from . import layout as L
from ..errors import DataError


class EventValidationError(DataError):
    """An event set broke a layout rule. The message names file, dataset, event index and rule."""


@dataclass(frozen=True)
class Summary:
    """What `validate_file` found: event count and mean multiplicity per object type."""

    path: str
    n_events: int
    mean_multiplicity: dict[str, float]

    def line(self) -> str:
        mult = " ".join(f"{k}={v:.2f}" for k, v in self.mean_multiplicity.items())
        return f"{self.path}: OK {self.n_events} events; mean multiplicity {mult}"


def _fail(where: str, index: int, rule: str) -> None:
    raise EventValidationError(f"{where}: event {index}: {rule}")


def check_dataset_layout(dataset: h5py.Dataset, where: str) -> None:
    """Dtype and shape of the `Particles` dataset: float, (N, 19, 4)."""
    if dataset.ndim != 3 or dataset.shape[1:] != (L.N_SLOTS, L.N_FEATURES):
        raise EventValidationError(
            f"{where}: has shape {dataset.shape}, expected (N, {L.N_SLOTS}, {L.N_FEATURES})"
        )
    if not np.issubdtype(dataset.dtype, np.floating):
        raise EventValidationError(f"{where}: has dtype {dataset.dtype}, expected a float type")


def check_events(x: np.ndarray, where: str, offset: int = 0, *, selection: bool = True) -> None:
    """Raise EventValidationError at the first event in `x` (N, 19, 4) that breaks a rule.

    `where` names the file and dataset; `offset` is the index of x[0] in the file. With
    `selection`, the ADC2021 object thresholds, acceptances and the single-lepton trigger are checked.
    """
    if x.ndim != 3 or x.shape[1:] != (L.N_SLOTS, L.N_FEATURES):
        raise EventValidationError(f"{where}: has shape {x.shape}, expected (N, {L.N_SLOTS}, {L.N_FEATURES})")
    rules: list[tuple[np.ndarray, str]] = []

    finite = np.isfinite(x).all(axis=(1, 2))
    rules.append((finite, "NaN or inf in a feature"))
    xs = np.where(np.isfinite(x), x, 0.0)
    pt, eta, phi, cls = xs[..., L.PT], xs[..., L.ETA], xs[..., L.PHI], xs[..., L.CLASS]
    empty = cls == L.EMPTY_ID
    rules.append((np.isin(cls, (L.EMPTY_ID, L.MET_ID, L.ELECTRON_ID, L.MUON_ID, L.JET_ID)).all(axis=1) | ~finite, "unknown class id"))
    wrong_class = ~empty & (cls != L.SLOT_CLASS)
    rules.append((~wrong_class.any(axis=1), "class id does not match its slot (MET 1, e 2, mu 3, jet 4)"))
    rules.append((~(empty & (xs != 0).any(axis=2)).any(axis=1), "empty slot (class 0) has non-zero features"))
    rules.append(((cls[:, 0] == L.MET_ID), "slot 0 is not MET (class 1)"))
    rules.append((eta[:, 0] == 0, "MET has non-zero eta"))
    rules.append(((pt >= 0).all(axis=1), "negative pT"))
    rules.append(((np.abs(phi) <= np.pi + 1e-5).all(axis=1), "phi outside [-pi, pi]"))
    for t in L.OBJECT_TYPES[1:]:
        e = empty[:, t.slots]
        p = pt[:, t.slots]
        rules.append(((~e[:, :-1] | e[:, 1:]).all(axis=1), f"{t.name}s: object after an empty slot (padding not at the end)"))
        ordered = (p[:, :-1] >= p[:, 1:]) | e[:, 1:]
        rules.append((ordered.all(axis=1), f"{t.name}s not pT-ordered"))
        if selection:
            filled = ~e
            rules.append((((p >= t.pt_min - 1e-3) | e).all(axis=1), f"{t.name} below pT threshold {t.pt_min} GeV"))
            rules.append((((np.abs(eta[:, t.slots]) <= t.eta_max + 1e-3) | ~filled).all(axis=1),
                          f"{t.name} outside |eta| < {t.eta_max}"))
    if selection:
        lead_e = pt[:, L.ELECTRONS].max(axis=1)
        lead_mu = pt[:, L.MUONS].max(axis=1)
        rules.append(((lead_e >= L.TRIGGER_PT - 1e-3) | (lead_mu >= L.TRIGGER_PT - 1e-3),
                      f"fails the trigger: no electron or muon with pT > {L.TRIGGER_PT} GeV"))
    for ok, rule in rules:
        if not ok.all():
            _fail(where, offset + int(np.argmin(ok)), rule)


def multiplicities(x: np.ndarray) -> dict[str, np.ndarray]:
    """Per-event object counts (N,) for electrons, muons and jets."""
    cls = x[..., L.CLASS]
    return {t.name: (cls[:, t.slots] != L.EMPTY_ID).sum(axis=1) for t in L.OBJECT_TYPES[1:]}


def validate_file(path: str | Path, *, chunk: int = 200_000, selection: bool = True) -> Summary:
    """Check a whole ADC2021 HDF5 file, streaming; return its Summary or raise EventValidationError."""
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise EventValidationError(f"{path}: no such file") from None
    except OSError as err:
        raise EventValidationError(f"{path}: not a readable HDF5 file ({err})") from None
    with f:
        if L.PARTICLES_KEY not in f:
            raise EventValidationError(
                f"{path}: no dataset '{L.PARTICLES_KEY}' (found: {', '.join(f.keys()) or 'none'})"
            )
        ds = f[L.PARTICLES_KEY]
        where = f"{path}:{L.PARTICLES_KEY}"
        check_dataset_layout(ds, where)
        n = ds.shape[0]
        if n == 0:
            raise EventValidationError(f"{where}: holds no events")
        totals = {t.name: 0 for t in L.OBJECT_TYPES[1:]}
        for start in range(0, n, chunk):
            try:
                x = ds[start : start + chunk]
            except OSError as err:
                raise EventValidationError(f"{where}: events {start}..: unreadable ({err})") from None
            check_events(x, where, start, selection=selection)
            for k, v in multiplicities(x).items():
                totals[k] += int(v.sum())
        if L.LABELS_KEY in f and f[L.LABELS_KEY].shape != (n,):
            raise EventValidationError(f"{path}:{L.LABELS_KEY}: has shape {f[L.LABELS_KEY].shape}, expected ({n},)")
    return Summary(str(path), n, {k: v / n for k, v in totals.items()})
