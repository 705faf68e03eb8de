"""`anomclr generate`: the five ADC2021 files from Pythia 8, chunked over Ray tasks and cached.

Work is split into chunks of (process, chunk index, n accepted events). A chunk's content depends
only on the generation config and its index, so the output is the same for any number of workers.
Finished chunks are cached on disk under a hash of everything that determines them: a killed run
resumes from them, and a rerun with an unchanged config writes nothing new.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from ...configs import to_plain
from ...errors import ConfigError, PlaceError
from ...infra.raycluster import connect
from .. import kinematics as kinematics_module
from .. import layout as L
from .. import layout as layout_module
from ..io import write_events
from . import detector as detector_module
from . import pileup as pileup_module
from . import processes as processes_module
from . import pythia_chunk as pythia_chunk_module
from .detector import CALIBRATION, DetectorConfig
from .processes import BACKGROUND_FRACTIONS, PROCESSES
from .pythia_chunk import generate_chunk

FORMAT_VERSION = 2  # bump when the files' format changes (2: calibrated to the published files)

# The code that is the generator's physics: processes, detector response, pile-up, the chunk loop, and the
# layout's object definitions and kinematics. Its syntax (every statement and number, not comments,
# docstrings or formatting) is part of every cache key and of the provenance hash (`physics_code`), so a
# constant edited anywhere in it cannot reuse chunks made before; no version to bump by hand.
PHYSICS_MODULES = (processes_module, detector_module, pileup_module, pythia_chunk_module, layout_module, kinematics_module)


def physics_code(modules=None) -> str:
    """A hash of the modules' syntax trees (default `PHYSICS_MODULES`) with docstrings dropped."""
    trees = []
    for module in modules or PHYSICS_MODULES:
        tree = ast.parse(Path(module.__file__).read_text())
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                    and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                node.body = body[1:] or [ast.Pass()]
        trees.append(ast.dump(tree, annotate_fields=False))
    return _hash(trees)


@dataclass(frozen=True)
class GenerationConfig:
    """Everything that determines the generated events."""

    n_background: int
    n_signal: int
    seed: int = 1
    signals: tuple[str, ...] = L.SIGNALS
    chunk_size: int = 500
    batch: int = 250
    detector: DetectorConfig = field(default_factory=DetectorConfig)

    def __post_init__(self):
        if self.n_background < 0 or self.n_signal < 0:
            raise ConfigError(f"event counts must be >= 0, got background={self.n_background}, signal={self.n_signal}")
        if self.n_background == 0 and self.n_signal == 0:
            raise ConfigError("nothing to generate: background and signal counts are both 0")
        if self.chunk_size < 1 or self.batch < 1:
            raise ConfigError(f"chunk_size and batch must be >= 1, got {self.chunk_size}, {self.batch}")
        if not 0 <= self.seed < 2**63:
            raise ConfigError(f"seed must be in [0, 2^63), got {self.seed}")
        for s in self.signals:
            if s not in L.SIGNALS:
                raise ConfigError(f"unknown signal {s!r}: expected one of {', '.join(L.SIGNALS)}")

    def process_counts(self) -> dict[str, int]:
        """Accepted events per process: background split by the cocktail fractions (largest remainder)."""
        raw = {p: self.n_background * f for p, f in BACKGROUND_FRACTIONS.items()}
        counts = {p: int(v) for p, v in raw.items()}
        for p in sorted(raw, key=lambda p: raw[p] - counts[p], reverse=True)[: self.n_background - sum(counts.values())]:
            counts[p] += 1
        counts.update({s: self.n_signal for s in self.signals})
        return {p: n for p, n in counts.items() if n > 0}

    def physics_dict(self) -> dict:
        """Config plus process settings and generator versions: what the cache hash covers."""
        return {
            "format_version": FORMAT_VERSION,
            "physics_code": physics_code(),
            "config": to_plain(self),
            "processes": {p: to_plain(PROCESSES[p]) for p in self.process_counts()},
            "background_fractions": BACKGROUND_FRACTIONS,
            "calibration": CALIBRATION,
            "versions": {k: _version(k) for k in ("pythia8mc", "fastjet", "numpy", "awkward")},
        }

    def config_hash(self) -> str:
        return _hash(self.physics_dict())


@dataclass(frozen=True)
class Chunk:
    process: str
    index: int
    n: int


def plan_chunks(cfg: GenerationConfig) -> list[Chunk]:
    chunks = []
    for proc, n in cfg.process_counts().items():
        for i, start in enumerate(range(0, n, cfg.chunk_size)):
            chunks.append(Chunk(proc, i, min(cfg.chunk_size, n - start)))
    return chunks


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "unknown"


def chunk_key(cfg: GenerationConfig, chunk: Chunk) -> str:
    physics = cfg.physics_dict()
    return _hash({"physics": physics["processes"].get(chunk.process), "detector": to_plain(cfg.detector),
                  "seed": cfg.seed, "batch": cfg.batch, "chunk": to_plain(chunk), "format": FORMAT_VERSION,
                  "code": physics["physics_code"], "versions": physics["versions"]})


def _run_chunk(cfg: GenerationConfig, chunk: Chunk):
    res = generate_chunk(PROCESSES[chunk.process], cfg.seed, chunk.index, chunk.n, cfg.detector, cfg.batch)
    return res.events, res.n_generated, res.seconds


def _save_chunk(path: Path, events: np.ndarray, n_generated: int, seconds: float) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.npz")
    np.savez(tmp, events=events, n_generated=n_generated, seconds=seconds)
    os.replace(tmp, path)


def _load_chunk(path: Path):
    with np.load(path) as z:
        return z["events"], int(z["n_generated"]), float(z["seconds"])


def check_output_dir(out: Path) -> None:
    """Fail fast, before any generation, if `out` cannot be written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise PlaceError(f"{out}: output directory is not writable ({err.strerror or err})") from None


def run_chunks(cfg: GenerationConfig, cache_dir: Path, workers: int | None = None, address: str | None = None,
               progress: bool = True) -> dict[str, list[tuple[np.ndarray, int, float]]]:
    """Generate (or load from cache) every chunk; returns per process the chunks in index order."""
    import ray
    from tqdm import tqdm

    cache_dir.mkdir(parents=True, exist_ok=True)
    chunks = plan_chunks(cfg)
    paths = {c: cache_dir / f"{c.process}-{c.index:05d}-{chunk_key(cfg, c)}.npz" for c in chunks}
    todo = [c for c in chunks if not paths[c].exists()]
    # slowest processes first so the last tasks are short
    todo.sort(key=lambda c: (c.process != "qcd", c.process not in L.SIGNALS, c.index))
    bar = tqdm(total=len(chunks), initial=len(chunks) - len(todo), desc="generate", unit="chunk",
               disable=not progress, file=sys.stderr)
    if todo:
        started_here = connect(address, workers)
        remote = ray.remote(num_cpus=1)(_run_chunk)
        pending = {remote.remote(cfg, c): c for c in todo}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                c = pending.pop(done[0])
                _save_chunk(paths[c], *ray.get(done[0]))
                bar.update(1)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            if started_here:
                ray.shutdown()
    bar.close()
    out: dict[str, list] = {}
    for c in chunks:
        out.setdefault(c.process, []).append(_load_chunk(paths[c]))
    return out


def generate(cfg: GenerationConfig, out: str | Path, *, workers: int | None = None, address: str | None = None,
             cache_dir: str | Path | None = None, progress: bool = True, command: str | None = None) -> dict:
    """Write the ADC2021 files for `cfg` into `out`; returns the provenance (with per-process summary)."""
    out = Path(out)
    check_output_dir(out)
    h = cfg.config_hash()
    prov_path = out / "provenance.json"
    if prov_path.exists():
        old = json.loads(prov_path.read_text())
        if old.get("config_hash") == h and all((out / L.FILE_NAMES[s]).exists() for s in old["files"]):
            return old
    cache = Path(cache_dir) if cache_dir else out / ".cache"
    t0 = time.perf_counter()
    results = run_chunks(cfg, cache, workers, address, progress)
    wall = time.perf_counter() - t0

    summary = {}
    for proc, parts in results.items():
        acc = sum(len(e) for e, _, _ in parts)
        gen = sum(g for _, g, _ in parts)
        cpu = sum(s for _, _, s in parts)
        summary[proc] = {"accepted": acc, "generated": gen, "efficiency": acc / gen,
                         "accepted_per_cpu_second": acc / cpu, "cpu_seconds": cpu}
    prov = {
        "generator": f"Pythia {_version('pythia8mc')} (pythia8mc) + FastJet {_version('fastjet')} anti-kT R=0.4 "
                     "+ anomclr_ray parametric CMS-like detector response",
        "command": command or "",
        "config_hash": h,
        "physics": cfg.physics_dict(),
        "summary": summary,
        "python": platform.python_version(),
        "anomclr_ray": _version("anomclr-ray"),
        "wall_seconds": wall,
        "files": [],
    }
    rng = np.random.default_rng(cfg.seed)
    if cfg.n_background:
        procs = [p for p in BACKGROUND_FRACTIONS if p in results]
        x = np.concatenate([np.concatenate([e for e, _, _ in results[p]]) for p in procs])
        labels = np.concatenate([np.full(sum(len(e) for e, _, _ in results[p]), L.PROCESS_LABELS[p]) for p in procs])
        perm = rng.permutation(len(x))
        _write(out, L.BACKGROUND, x[perm], labels[perm], prov)
    for s in cfg.signals:
        if s in results:
            _write(out, s, np.concatenate([e for e, _, _ in results[s]]), None, prov)
    prov["checksums"] = {f: _sha256(out / f) for f in (L.FILE_NAMES[s] for s in prov["files"])}
    tmp = prov_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(prov, indent=2, default=str))
    os.replace(tmp, prov_path)
    return prov


def _write(out: Path, sample: str, x: np.ndarray, labels, prov: dict) -> None:
    attrs = {
        "sample": sample,
        "generator": prov["generator"],
        "config_hash": prov["config_hash"],
        "seed": prov["physics"]["config"]["seed"],
        "format_version": FORMAT_VERSION,
        "command": prov["command"],
        "versions": prov["physics"]["versions"],
        "detector": prov["physics"]["config"]["detector"],
    }
    procs = list(BACKGROUND_FRACTIONS) if sample == L.BACKGROUND else [sample]
    attrs["processes"] = {p: prov["physics"]["processes"][p] for p in procs if p in prov["physics"]["processes"]}
    # counts and efficiencies only: timings differ run to run and would change the file's bytes
    attrs["process_summary"] = {p: {k: prov["summary"][p][k] for k in ("accepted", "generated", "efficiency")}
                                for p in procs if p in prov["summary"]}
    if labels is not None:
        attrs["process_labels"] = L.PROCESS_LABELS
        attrs["background_fractions"] = BACKGROUND_FRACTIONS
    write_events(out / L.FILE_NAMES[sample], x, labels=labels, attrs=attrs)
    prov["files"].append(sample)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
