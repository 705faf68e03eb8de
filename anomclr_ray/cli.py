"""The `anomclr` console command."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from .events import layout as L

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "default"


def _generate(args: argparse.Namespace) -> int:
    from .events.generation.runner import GenerationConfig, generate
    from .events.plots import validation_plots

    cfg = GenerationConfig(n_background=args.background, n_signal=args.signal, seed=args.seed,
                           signals=tuple(args.signals), chunk_size=args.chunk_size)
    command = "anomclr " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    prov = generate(cfg, args.out, workers=args.workers, address=args.address, cache_dir=args.cache_dir,
                    progress=not args.quiet, command=command)
    print(f"{'process':<12}{'accepted':>10}{'generated':>11}{'efficiency':>12}{'accepted/s/core':>17}")
    for proc, s in prov["summary"].items():
        print(f"{proc:<12}{s['accepted']:>10}{s['generated']:>11}{s['efficiency']:>12.4f}"
              f"{s['accepted_per_cpu_second']:>17.1f}")
    plots = validation_plots(args.out, Path(args.out) / "validation")
    print(f"wrote {len(prov['files'])} files to {args.out} (config hash {prov['config_hash']}); "
          f"{len(plots)} validation plots in {Path(args.out) / 'validation'}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from .events.validate import EventValidationError, validate_file

    paths = list(args.files)
    if args.data_dir:
        from .events.io import find_sample_file

        paths += [find_sample_file(args.data_dir, s) for s in L.SAMPLES]
    if not paths:
        print("anomclr validate: give files or --data-dir", file=sys.stderr)
        return 2
    status = 0
    for p in paths:
        try:
            print(validate_file(p, selection=not args.no_selection).line())
        except EventValidationError as err:
            print(f"error: {err}", file=sys.stderr)
            status = 1
    return status


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _signal(text: str) -> str:
    if text not in L.SIGNALS:
        raise argparse.ArgumentTypeError(f"unknown signal {text!r}: expected one of {', '.join(L.SIGNALS)}")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="anomclr", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="generate ADC2021-layout events with Pythia 8 + FastJet + detector response")
    g.add_argument("--out", required=True, type=Path, help="output directory for the five .h5 files")
    g.add_argument("--background", type=_non_negative, default=100_000, help="accepted background events")
    g.add_argument("--signal", type=_non_negative, default=10_000, help="accepted events per signal")
    g.add_argument("--signals", type=_signal, nargs="+", default=list(L.SIGNALS), help="signals to generate")
    g.add_argument("--seed", type=_non_negative, default=1)
    g.add_argument("--workers", type=int, default=None, help="Ray CPUs on this machine (default: all)")
    g.add_argument("--address", default=None, help="existing Ray cluster address (e.g. auto)")
    g.add_argument("--chunk-size", type=int, default=500, help="accepted events per Ray task")
    g.add_argument("--cache-dir", type=Path, default=None, help="chunk cache (default OUT/.cache)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.set_defaults(func=_generate)

    v = sub.add_parser("validate", help="check ADC2021 HDF5 files (keys, shapes, class ids, padding, cuts)")
    v.add_argument("files", nargs="*", type=Path)
    v.add_argument("--data-dir", type=Path, default=None, help="validate the five files of a data directory")
    v.add_argument("--no-selection", action="store_true", help="skip the selection-cut and trigger checks")
    v.set_defaults(func=_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, PermissionError) as err:
        print(f"anomclr {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
