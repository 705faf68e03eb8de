"""NPLM's toys: what is run (`plan`), each toy's seeded draw from the pools and its fit, a resumable
JSONL store of finished toys, and running them in this process or as Ray tasks."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import NPLMConfig
from .estimator import fit, likelihood_ratio
from ..errors import ConfigError

NULL = "null"


@dataclass(frozen=True)
class Toy:
    """One pseudo-experiment: `signal` None for a null toy."""

    signal: str | None
    fraction: float
    index: int

    @property
    def id(self) -> str:
        """"null/0007", "ato4l/0.005/0007": its key in a toy store and the source of its seed."""
        return f"{NULL}/{self.index:04d}" if self.signal is None else f"{self.signal}/{self.fraction:g}/{self.index:04d}"


def plan(cfg: NPLMConfig, signals: Iterable[str]) -> list[Toy]:
    """The null toys, then `cfg.toys` per signal and fraction."""
    return [Toy(None, 0.0, i) for i in range(cfg.null_toys)] + [
        Toy(s, f, i) for s in signals for f in cfg.fractions for i in range(cfg.toys)]


@dataclass
class Pools:
    """Held-out events a toy draws from, standardised (float64, (N, D)): the background (reference and data
    background are disjoint within a toy) and each signal."""

    background: torch.Tensor
    signals: dict[str, torch.Tensor]
    sigma: float


def toy_rng(cfg: NPLMConfig, toy: Toy) -> np.random.Generator:
    """A toy's own random stream: from the config's seed and the toy's id only, so a toy gives the same
    draw wherever and whenever it runs."""
    return np.random.default_rng([cfg.seed, zlib.crc32(toy.id.encode())])


def draw(pools: Pools, cfg: NPLMConfig, toy: Toy) -> tuple[torch.Tensor, torch.Tensor, np.random.Generator]:
    """The toy's events (reference first, then data) and is_data; the generator, for its Nyström centres."""
    rng = toy_rng(cfg, toy)
    n_b = int(rng.poisson(cfg.n_background))
    n_s = int(rng.poisson(toy.fraction * cfg.n_background)) if toy.signal is not None else 0
    bkg = pools.background
    if cfg.n_reference + n_b > len(bkg):
        raise ValueError(f"NPLM toy {toy.id}: drew {n_b} background events, the pool holds {len(bkg)} for N_R + N_B")
    picked = torch.as_tensor(rng.permutation(len(bkg))[: cfg.n_reference + n_b], device=bkg.device)
    parts = [bkg[picked]]
    if n_s:
        sig = pools.signals[toy.signal]
        if n_s > len(sig):
            raise ValueError(f"NPLM toy {toy.id}: drew {n_s} signal events, the {toy.signal} pool holds {len(sig)}")
        parts.append(sig[torch.as_tensor(rng.choice(len(sig), n_s, replace=False), device=sig.device)])
    x = torch.cat(parts)
    is_data = torch.arange(len(x), device=x.device) >= cfg.n_reference
    return x, is_data, rng


def run_toy(pools: Pools, cfg: NPLMConfig, toy: Toy) -> float:
    """Draw, fit, and return t."""
    x, is_data, rng = draw(pools, cfg, toy)
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    _, f = fit(x, is_data, cfg.weight, pools.sigma, cfg.centres, cfg.penalty, cfg.newton_steps, generator)
    return likelihood_ratio(f, is_data, cfg.weight)


class ToyStore:
    """Finished toys, one JSON line each ({"toy": id, "t": value}) appended as they finish, after a first
    line with what they were run with (`key`: the config and the input): a run that is killed and started
    again skips them; a store of other settings is refused. A torn last line (killed mid-write) is ignored."""

    def __init__(self, path: str | Path | None, key: dict | None = None):
        self.path = None if path is None else Path(path)
        self.done: dict[str, float] = {}
        if self.path is None:
            return
        key = json.loads(json.dumps(key or {}))  # as it reads back
        if not self.path.exists() or not self.path.read_text().strip():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps({"key": key}) + "\n")
            return
        text = self.path.read_text()
        if not text.endswith("\n"):  # a torn last line: end it, so that the next record starts on its own
            with self.path.open("a") as fh:
                fh.write("\n")
        first, *lines = text.splitlines()
        if json.loads(first).get("key") != key:
            raise ConfigError(f"{self.path}: its toys were run with other settings ({first}); write to another "
                             f"folder or remove it")
        for line in lines:
            try:
                record = json.loads(line)
                self.done[record["toy"]] = float(record["t"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue

    def add(self, toy: Toy, t: float) -> None:
        self.done[toy.id] = t
        if self.path is not None:
            with self.path.open("a") as fh:
                fh.write(json.dumps({"toy": toy.id, "t": t}) + "\n")


def run_toys(pools: Pools, cfg: NPLMConfig, toys: list[Toy], store: ToyStore | None = None, workers: int = 0,
             progress: bool = False, desc: str = "nplm") -> dict[str, float]:
    """t of every toy ({toy id: t}), skipping those `store` holds and adding each as it finishes.
    `workers` = 0: in this process, on the pools' device (a study's trial, which already holds its CPU;
    a GPU); else as Ray tasks on CPUs, at most `workers` at once, one CPU each."""
    store = store or ToyStore(None)
    todo = [toy for toy in toys if toy.id not in store.done]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(toys), initial=len(toys) - len(todo), desc=desc, unit="toy")
    try:
        if workers == 0:
            for toy in todo:
                store.add(toy, run_toy(pools, cfg, toy))
                bar and bar.update()
        else:
            _run_ray(pools, cfg, todo, store, workers, bar)
    finally:
        bar and bar.close()
    return {toy.id: store.done[toy.id] for toy in toys}


def _run_ray(pools: Pools, cfg: NPLMConfig, todo: list[Toy], store: ToyStore, workers: int, bar) -> None:
    import ray

    task = ray.remote(num_cpus=1)(run_toy)
    shared = ray.put(Pools(pools.background.cpu(), {s: x.cpu() for s, x in pools.signals.items()}, pools.sigma))
    pending: dict = {}
    queue = list(todo)
    while queue or pending:
        while queue and len(pending) < workers:
            toy = queue.pop(0)
            pending[task.remote(shared, cfg, toy)] = toy
        (ready,), _ = ray.wait(list(pending), num_returns=1)
        store.add(pending.pop(ready), ray.get(ready))
        bar and bar.update()
