"""What the scripts in studies/ share: their command line, the three study sizes, and "run the study,
then write its report from MLflow".

A study is a `StudyConfig`: the script names it and its search space; the size adds a row of `SIZES`
(overrides, in the grammar of `configs`); `--set key=value ...` overrides anything after that. Every
study's whole config is written to its MLflow parent run (`study.yaml`), and `--config study.yaml`
runs it again as it was (with `--set` on top).

Sizes: `--smoke` (minutes on a laptop CPU), the default "reproduction" size (hours on this project's
2-core CPU machines, the shipped 200k-event data set), `--paper` (the published encoder settings, for
a GPU cluster and a larger data set: more events than the shipped set holds, so it fails fast there).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import USER_ERRORS, configs
from .errors import ConfigError
from .events.dataset import DEFAULT_DATA_DIR, REPRODUCTION_SPLIT, DataConfig, with_validation
from .infra.storage import DEFAULT_STORAGE, STORAGE_ENV
from .report.build import build_report
from .report.tracking import DEFAULT_TRACKING_URI, TRACKING_ENV, absolute_uri, default_tracking_uri
from .study import StudyConfig, one_line, run_study, sample_of

SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"data.n_train": 4000, "data.n_test": 4000, "data.n_test_signal": 2000,
              "model.model_dim": 32, "model.heads": 4, "model.layers": 1,
              "train.epochs": 2, "train.batch_size": 200, "train.learning_rate": 5e-4,
              "score.epochs": 10, "score.batch_size": 256, "ae_seeds": [0]},
    # the AE trains on its own 60k events, after the encoder's (docs/method.md): 160k of the shipped 200k
    "reproduction": {**{f"data.{k}": v for k, v in REPRODUCTION_SPLIT.items()}, "data.n_ae": 60_000,
                     "model.model_dim": 64, "model.heads": 4, "model.layers": 2,
                     "train.epochs": 20, "train.batch_size": 512, "train.learning_rate": 5e-4,
                     # the AE at half the published 100 epochs and batch 512 (published 4096): 48k training events
                     "score.epochs": 50, "score.batch_size": 512},
    # the encoder at its published defaults (136 dimensions, 4 heads, 4 layers), the paper's data and epochs
    "paper": {"data.n_train": 1_000_000, "data.n_test": 500_000, "data.n_test_signal": 50_000,
              "train.epochs": 100, "train.batch_size": 1024},
}


def entry(main: Callable[[], None]) -> None:
    """Run a study script's `main`: a mistake in its input (config, data, an unreachable store or
    cluster) is one line on stderr and exit status 2; a bug keeps its traceback."""
    try:
        main()
    except USER_ERRORS as err:
        print(f"{Path(sys.argv[0]).name}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def parser(doc: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--smoke", action="store_true", help="tiny sizes: minutes on a CPU")
    size.add_argument("--paper", action="store_true", help="paper-size encoder and data: a GPU cluster")
    size.add_argument("--config", type=Path, help="run the study this file describes (a study.yaml from MLflow)")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override config fields after the size, e.g. train.epochs=3 model.model_dim=32 eps_s=0.5 "
                        "(keys: <data|model|train|score|scaling>.<field> or a StudyConfig field)")
    p.add_argument("--data-dir", type=Path, default=None, help=f"event files (default: {DEFAULT_DATA_DIR})")
    p.add_argument("--tracking-uri", default=None,
                   help=f"MLflow store (default: ${TRACKING_ENV}, else {DEFAULT_TRACKING_URI})")
    p.add_argument("--address", default=None, help="Ray cluster address (default: $RAY_ADDRESS, the cluster "
                                                   "`ray start` made here, else a local Ray)")
    p.add_argument("--storage", default=None,
                   help=f"study state and checkpoints: a path or s3://bucket/prefix (default: ${STORAGE_ENV}, else {DEFAULT_STORAGE})")
    p.add_argument("--reports", type=Path, default=Path("reports"), help="report folder (one per study)")
    p.add_argument("--workers", type=int, default=None, help="DDP workers per trial (default 1)")
    p.add_argument("--gpu", action="store_true", help="one GPU per DDP worker")
    p.add_argument("--seeds", type=int, nargs="+", help="CLR seeds of a grid study (default: the script's)")
    return p


def seeds(args: argparse.Namespace, default: list[int]) -> list[int]:
    """The CLR seeds a grid study runs: --seeds, else one seed at --smoke, else the script's default."""
    return args.seeds or ([0] if args.smoke else default)


def size(args: argparse.Namespace) -> str:
    return "smoke" if args.smoke else "paper" if args.paper else "reproduction"


def validation_split(args: argparse.Namespace, fraction: float = 0.25) -> dict[str, int]:
    """Settings that set `fraction` of the size's test background and of each test signal aside as a
    validation set (`with_validation`): for an objective that must not see the test signals."""
    row = SIZES[size(args)]
    data = with_validation(DataConfig(n_test=row["data.n_test"], n_test_signal=row["data.n_test_signal"]), fraction)
    return {f"data.{k}": getattr(data, k) for k in ("n_test", "n_val", "n_test_signal", "n_val_signal")}


def study(args: argparse.Namespace, name: str, search_space: dict[str, dict[str, list]],
          **settings: Any) -> StudyConfig:
    """The study a script runs: `name` (with a `_smoke` / `_paper` suffix) and `search_space`, at the
    size `args` chose, with the script's `settings` ({key: value} in the `configs` grammar, e.g.
    {"train.loss": "anomclr_plus", "search": "tpe"}), then the command line's places and `--set`.
    With `--config`, the file is the study (the script's choices are in it) and only the command line
    changes it."""
    places = {"tracking_uri": args.tracking_uri, "storage_path": args.storage, "data.data_dir": args.data_dir,
              "scaling.num_workers": args.workers, "scaling.use_gpu": args.gpu or None}
    given = {k: str(v) if isinstance(v, Path) else v for k, v in places.items() if v is not None}
    if args.config:
        cfg = configs.load(StudyConfig, args.config)
        if args.seeds:
            raise ConfigError("--seeds: the study of --config has its search space; use --set search_space=...")
        return configs.override(configs.override(cfg, given), args.set)
    defaults = {"tracking_uri": default_tracking_uri(), "storage_path": os.environ.get(STORAGE_ENV, DEFAULT_STORAGE),
                "data.data_dir": str(DEFAULT_DATA_DIR)}
    suffix = "" if size(args) == "reproduction" else f"_{size(args)}"
    base = configs.build(StudyConfig, {**defaults, **SIZES[size(args)], **settings, **given},
                         {"name": f"{name}{suffix}", "search_space": search_space})
    return configs.override(base, args.set)


def run(study: StudyConfig, args: argparse.Namespace) -> None:
    """Run (or resume) the study, print the best trial, write the report; say where everything is.
    Exits with status 1 when a trial failed, after the report of the others."""
    results = run_study(study, address=args.address)
    scored = [r for r in results if (r.metrics or {}).get(study.metric) is not None]
    unscored = len(results) - len(scored)
    print(f"{len(results)} trials, {len(results.errors)} failed"
          + (f", {unscored} without {study.metric} yet: the same command resumes the study" if unscored else ""))
    if scored:
        best = max(scored, key=lambda r: r.metrics[study.metric])
        print(f"best {study.metric} = {best.metrics[study.metric]:.3f} "
              f"({', '.join(f'{k}={v}' for k, v in sample_of(best.config).items())})")
    report = build_report(absolute_uri(study.tracking_uri), study.name, args.reports / study.name, study.metric)
    print(f"report: {report}")
    print(f"MLflow: anomclr ui --tracking-uri {study.tracking_uri}   (experiment {study.name})")
    if results.errors:
        print(f"{len(results.errors)} trials failed; the first: {one_line(results.errors[0])}", file=sys.stderr)
        raise SystemExit(1)
