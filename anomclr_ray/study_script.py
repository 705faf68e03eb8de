"""What the scripts in studies/ share: their command line, three sizes of base configs, and
"run the study, then write its report from MLflow".

Sizes: `--smoke` (minutes on a laptop CPU), the default "reproduction" size (hours on this project's
2-core CPU machines, the shipped 100k-event data set), `--paper` (the published encoder settings, for
a GPU cluster and a larger data set: more events than the shipped set holds, so it fails fast there).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import USER_ERRORS
from .distributed import ScalingSpec
from .events.dataset import DEFAULT_DATA_DIR, DataConfig
from .model import ModelConfig
from .pretrain import TrainConfig
from .report import build_report
from .score import ScoreConfig
from .storage import STORAGE_ENV
from .study import StudyConfig, run_study
from .tracking import absolute_uri, default_tracking_uri


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
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    p.add_argument("--tracking-uri", default=default_tracking_uri(),
                   help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns.db)")
    p.add_argument("--address", default=None, help="Ray cluster address (default: $RAY_ADDRESS, the cluster "
                                                   "`ray start` made here, else a local Ray)")
    p.add_argument("--storage", default=os.environ.get(STORAGE_ENV, "runs"),
                   help=f"study state and checkpoints: a path or s3://bucket/prefix (default: ${STORAGE_ENV}, else runs)")
    p.add_argument("--reports", type=Path, default=Path("reports"), help="report folder (one per study)")
    p.add_argument("--workers", type=int, default=1, help="DDP workers per trial")
    p.add_argument("--gpu", action="store_true", help="one GPU per DDP worker")
    p.add_argument("--seeds", type=int, nargs="+", help="CLR seeds of a grid study (default: the script's)")
    return p


def seeds(args: argparse.Namespace, default: list[int]) -> list[int]:
    """The CLR seeds a grid study runs: --seeds, else one seed at --smoke, else the script's default."""
    return args.seeds or ([0] if args.smoke else default)


def base(args: argparse.Namespace, name: str, **train: Any) -> dict[str, Any]:
    """StudyConfig keyword arguments for the chosen size; `train` overrides TrainConfig fields."""
    common = {"tracking_uri": args.tracking_uri, "storage_path": args.storage}
    scaling = ScalingSpec(num_workers=args.workers, use_gpu=args.gpu)
    if args.smoke:
        return {"name": f"{name}_smoke", **common, "scaling": scaling,
                "data": DataConfig(data_dir=str(args.data_dir), n_train=4000, n_test=4000, n_test_signal=2000),
                "model": ModelConfig(model_dim=32, heads=4, layers=1),
                "train": TrainConfig(**{"epochs": 2, "batch_size": 200, "learning_rate": 5e-4, **train}),
                "score": ScoreConfig(epochs=10, batch_size=256)}
    if args.paper:
        return {"name": f"{name}_paper", **common, "scaling": scaling, "ae_seeds": (0, 1, 2),
                "data": DataConfig(data_dir=str(args.data_dir), n_train=1_000_000, n_test=500_000, n_test_signal=50_000),
                "model": ModelConfig(),  # 136 dims, 4 heads, 4 layers: DESIGN.md's defaults
                "train": TrainConfig(**{"epochs": 100, "batch_size": 1024, **train}),
                "score": ScoreConfig()}
    return {"name": name, **common, "scaling": scaling, "ae_seeds": (0, 1, 2),
            "data": DataConfig(data_dir=str(args.data_dir), n_train=60_000, n_test=40_000, n_test_signal=10_000),
            "model": ModelConfig(model_dim=64, heads=4, layers=2),
            "train": TrainConfig(**{"epochs": 20, "batch_size": 512, "learning_rate": 5e-4, **train}),
            "score": ScoreConfig(epochs=50, batch_size=512)}


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
              f"({', '.join(f'{k}={v}' for k, v in best.config.items())})")
    report = build_report(absolute_uri(study.tracking_uri), study.name, args.reports / study.name, study.metric)
    print(f"report: {report}")
    print(f"MLflow: anomclr ui --tracking-uri {study.tracking_uri}   (experiment {study.name})")
    if results.errors:
        print(f"{len(results.errors)} trials failed; the first: {one_line(results.errors[0])}", file=sys.stderr)
        raise SystemExit(1)


def one_line(err: BaseException) -> str:
    """The line of a (Ray-wrapped) exception that names it: "ValueError: ...", not the traceback."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()] or [type(err).__name__]
    named = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Interrupt)\b", line)]
    return re.sub(r"^(?:\w+\.)+(?=\w+:)", "", (named or lines)[-1])  # "pkg.mod.ValueError: m" -> "ValueError: m"
