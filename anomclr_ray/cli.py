"""The `anomclr` console command."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from . import USER_ERRORS
from .errors import ConfigError
from .events import layout as L

CONFIG_FILE = "config.yaml"  # what `anomclr pretrain` and `anomclr score` ran, beside their results


def _generate(args: argparse.Namespace) -> int:
    from .events.calibration import calibration_report
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
    _print_calibration(*calibration_report(args.out, Path(args.out) / "validation"))
    return 0


def _print_calibration(figures, path: Path) -> None:
    print(f"calibration against the published files: {sum(f.ok for f in figures)} of {len(figures)} figures "
          f"within tolerance; table and plots in {path.parent} ({path.name})")


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
    if args.reference and status == 0:
        from .events.calibration import calibration_report

        if not args.data_dir:
            print("anomclr validate: --reference compares a whole data directory: give --data-dir", file=sys.stderr)
            return 2
        _print_calibration(*calibration_report(args.data_dir, args.out or args.data_dir / "validation",
                                               args.max_events))
    return status


def _job(cls: type, args: argparse.Namespace):
    """A command's config: its --config file (else the dataclass defaults), then --data-dir, then --set."""
    from . import configs

    cfg = configs.load(cls, args.config) if args.config else cls()
    if args.data_dir:
        cfg = configs.override(cfg, {"data.data_dir": str(args.data_dir)})
    return configs.override(cfg, args.set)


def _pretrain(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from . import configs
    from .events.dataset import check_data, load_dataset
    from .events.preprocess import Preprocessor
    from .method.names import labels_needed
    from .train import PretrainJob, choose_device, pretrain, save_checkpoint

    job = _job(PretrainJob, args)
    device = choose_device(args.device)
    data = replace(job.data, n_test=1, n_test_signal=1, n_val=0, n_val_signal=0, signals=())  # the training events
    check_data(data, labels=labels_needed(job.train.loss))  # before reading events
    dataset = load_dataset(data)
    pre = Preprocessor.fit(dataset.train)
    args.out.mkdir(parents=True, exist_ok=True)
    configs.dump(job, args.out / CONFIG_FILE)
    model, history = pretrain(dataset.train, pre, job.model, job.train, device, labels=dataset.train_labels)
    save_checkpoint(args.out / "checkpoint.pt", model, pre, job.train, history)
    print(f"wrote {args.out / 'checkpoint.pt'} ({CONFIG_FILE} beside it: --config takes it back)")
    return 0


def _inputs(data, models: list, raw: bool, device, one_hot: bool = False) -> dict[str, tuple]:
    """What `score` and `nplm` test: {name: (checkpoint path or None, events -> inputs)}: AE-Raw's raw
    preprocessed events unless not `raw` (with the first checkpoint's preprocessing, the one CLR saw, else
    fitted on the training events; the kinematic features, with the one-hot type if `one_hot`), then each
    checkpoint's representation, named by its loss. `models`: (path, model, preprocessor, train config)
    per checkpoint."""
    from .events.preprocess import Preprocessor
    from .method.evaluate import ae_inputs
    from .method.names import BASELINE

    inputs = {}
    if raw:
        inputs[BASELINE] = (None, ae_inputs(models[0][2] if models else Preprocessor.fit(data.train), one_hot=one_hot))
    for i, (path, model, pre, cfg) in enumerate(models):
        inputs[cfg.loss if cfg.loss not in inputs else f"{cfg.loss}_{i}"] = (path, ae_inputs(pre, model, device))
    return inputs


def _score(args: argparse.Namespace) -> int:
    import json

    from . import configs
    from .events.dataset import load_dataset
    from .method.evaluate import ScoreJob, evaluate_splits
    from .method.names import parse_proxy_key
    from .report.figures import metrics_table, plot_curves
    from .train import choose_device, load_checkpoint

    job = _job(ScoreJob, args)
    device = choose_device(args.device)
    models = [(p, *load_checkpoint(p, device)) for p in args.checkpoint]
    for _, model, _, _ in models:  # configs first: fail before reading data or training anything
        job.score.check_input_dim(model.cfg.rep_dim)
    if not args.no_ae_raw:
        job.score.check_input_dim(job.score.raw_dim)
    job.score.check_training_events(job.data.n_ae_train)
    data = load_dataset(job.data)
    summaries, curves, signal_free = {}, {}, {}
    for name, (_, embed) in _inputs(data, models, not args.no_ae_raw, device, job.score.raw_one_hot).items():
        ev = evaluate_splits(embed, data, job.score, job.ae_seeds, job.eps_s)
        summaries[name], curves[name] = ev.summary(), ev.curves
        signal_free[name] = {k: v for k, v in ev.flat_metrics().items() if parse_proxy_key(k)}
        print(f"{name}: " + ", ".join(f"{s} AUC {m['auc']:.3f}" for s, m in summaries[name].items())
              + "; signal-free " + ", ".join(f"{k} {v:.3f}" for k, v in signal_free[name].items() if "auc" in k))
    args.out.mkdir(parents=True, exist_ok=True)
    configs.dump(job, args.out / CONFIG_FILE)
    (args.out / "metrics.json").write_text(json.dumps(summaries, indent=2))
    (args.out / "signal_free.json").write_text(json.dumps(signal_free, indent=2))
    (args.out / "table.md").write_text(metrics_table(summaries, "auc") + "\n\n" + metrics_table(summaries, "si") + "\n")
    plot_curves(curves, args.out)
    print(metrics_table(summaries, "auc"))
    print(f"wrote metrics.json, signal_free.json, table.md, roc.png, si.png, {CONFIG_FILE} to {args.out}")
    return 0


def _nplm(args: argparse.Namespace) -> int:
    import json
    import time

    from . import configs
    from .events.dataset import load_dataset
    from .infra.raycluster import connect
    from .method.names import BASELINE, method_color, method_label
    from .nplm import POWER_RANGE, NPLMJob, ToyStore, nplm_test
    from .report.figures import plot_lines, plot_null
    from .train import choose_device, load_checkpoint

    if args.no_raw and not args.checkpoint:
        raise ConfigError("nothing to test: give --checkpoint, or leave out --no-raw")
    job = _job(NPLMJob, args)
    device = choose_device(args.device)
    workers = args.workers if args.workers is not None else (0 if device.type == "cuda" else len(os.sched_getaffinity(0)))
    models = [(p, *load_checkpoint(p, device)) for p in args.checkpoint]
    data = load_dataset(job.data)
    inputs = _inputs(data, models, not args.no_raw, device)
    if workers:
        connect(args.address)
    args.out.mkdir(parents=True, exist_ok=True)
    configs.dump(job, args.out / CONFIG_FILE)
    results, summary = {}, {}
    for name, (path, embed) in inputs.items():
        key = {"nplm": job.nplm.toy_settings, "data": configs.to_plain(job.data),
               "input": str(Path(path).resolve()) if path else BASELINE}
        store = ToyStore(args.out / name / "toys.jsonl", key)
        before, t0 = len(store.done), time.perf_counter()
        res = nplm_test(embed(data.test_background), {s: embed(x) for s, x in data.test_signals.items()}, job.nplm,
                        store, workers, progress=not args.quiet, device=device if not workers else "cpu")
        ran = len(store.done) - before
        results[name] = res
        summary[name] = {"input": key["input"], "dimension": res.dimension, "sigma": res.sigma, "null_dof": res.dof,
                         "toys_run": ran, "wall_s": time.perf_counter() - t0, "workers": workers,
                         "metrics": res.metrics()}
        print(f"{name}: {res.dimension} dims, sigma {res.sigma:g}, null chi2 dof {res.dof:.1f}; P(Z>3) "
              + ", ".join(f"{s} {f:g}: {res.power(s, f):.2f}" for s, f in res.signal))
    (args.out / "nplm.json").write_text(json.dumps(summary, indent=2))
    panels = {s: L.SIGNAL_LATEX[s] for s in data.test_signals}
    plot_lines({method_label(n): r.power_table() for n, r in results.items()}, panels, args.out / "power.png",
               "injected signal fraction", "P(Z > 3)",
               {method_label(n): (method_color(n, f"C{i}"), "-") for i, n in enumerate(results)}, log_x=None,
               ylim=POWER_RANGE)
    plot_null({n: (r.null, r.dof) for n, r in results.items()}, args.out / "null.png")
    print(f"wrote nplm.json, power.png, null.png, {CONFIG_FILE} and the toys (<input>/toys.jsonl: a rerun "
          f"skips them) to {args.out}")
    return 0


def _store(uri: str) -> str:
    """The tracking URI made absolute, checked reachable before any work."""
    from .report.tracking import absolute_uri, check_tracking

    uri = absolute_uri(uri)
    check_tracking(uri)
    return uri


def _report(args: argparse.Namespace) -> int:
    from .report.build import ALL, LATEST, build_report

    uris = [_store(u) for u in args.tracking_uri]
    executions = args.execution[0] if args.execution in ([LATEST], [ALL]) else args.execution
    if len(uris) > 1 and executions not in (LATEST, ALL):
        raise ConfigError("--execution RUN_ID names a parent run of one store: with several --tracking-uri use latest or all")
    path = build_report(uris, args.experiment, args.out, args.metric, executions)
    print(f"wrote {path} (figures, trials.csv beside it)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from .export.registry import export_model

    uri = _store(args.tracking_uri)
    model, version = export_model(uri, args.experiment, args.name, args.alias, args.trial, args.metric)
    print(f"registered {model} (version {version}) in {uri}; its model card is the artifact model_card.md\n"
          f"apply it: anomclr apply --model {model} --tracking-uri {uri} --data FILE_OR_DIR --out DIR")
    return 0


def _apply(args: argparse.Namespace) -> int:
    import tempfile

    from .export.registry import apply_model, load_scorer

    uri = _store(args.tracking_uri)
    if not args.data.exists():
        raise ConfigError(f"--data {args.data}: no such file or folder")
    with tempfile.TemporaryDirectory() as tmp:
        scorer = load_scorer(args.model, uri, tmp)
    reports = apply_model(scorer, args.data, args.out, args.strict)
    print(f"scored {len(reports)} file(s) with {args.model}: per event OUT/<name>.scores.h5, per file "
          f"OUT/<name>.report.md, in {args.out}")
    return 0


def _ui(args: argparse.Namespace) -> int:
    import subprocess

    from .report.tracking import client
    from .report.ui import LOOPBACK, render, ui_command, view_url, wait_until_up

    uri = _store(args.tracking_uri)
    exp_id = None
    if args.experiment:
        exp = client(uri).get_experiment_by_name(args.experiment)
        if exp is None:
            raise ConfigError(f"MLflow experiment {args.experiment!r} not found in {uri}")
        exp_id = exp.experiment_id
    if args.screenshot:
        if exp_id is None:
            raise ConfigError("--screenshot needs --experiment")
        with subprocess.Popen(ui_command(uri, "127.0.0.1", args.port), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) as proc:
            try:
                wait_until_up("127.0.0.1", args.port, proc)
                render(view_url("127.0.0.1", args.port, exp_id), args.screenshot, args.width, args.height)
            finally:
                proc.terminate()
        print(f"wrote {args.screenshot}")
        return 0
    if args.host not in LOOPBACK:
        print(f"anomclr ui: warning: serving on {args.host}: anyone who reaches this address sees and can change "
              "the runs; prefer 127.0.0.1 and an SSH tunnel", file=sys.stderr)
    where = view_url(args.host, args.port, exp_id) if exp_id else f"http://{args.host}:{args.port}"
    print(f"MLflow UI for {uri}: {where}", flush=True)
    cmd = ui_command(uri, args.host, args.port)
    os.execv(cmd[0], cmd)  # replaces this process: Ctrl-C stops the UI
    return 0


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _signal(text: str) -> str:
    if text not in L.SIGNALS:
        raise argparse.ArgumentTypeError(f"unknown signal {text!r}: expected one of {', '.join(L.SIGNALS)}")
    return text


def _config_arguments(p: argparse.ArgumentParser, example: str) -> None:
    p.add_argument("--config", type=Path, default=None, help=f"a {CONFIG_FILE} this command wrote (or one by hand)")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help=f"override config fields, e.g. {example}")
    p.add_argument("--data-dir", type=Path, default=None, help="event files (default: the shipped data set); "
                                                                "the same as --set data.data_dir=...")


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

    p = sub.add_parser("pretrain", help="contrastive pretraining of the encoder on background events",
                       description="Pretrain an encoder; every setting is a field of PretrainJob (data, model, "
                                   "train), at its default unless --config or --set says otherwise.")
    p.add_argument("--out", type=Path, required=True, help="run directory for checkpoint.pt and config.yaml")
    _config_arguments(p, "train.loss=anomclr train.epochs=3 model.model_dim=64 data.n_train=20000")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda")
    p.set_defaults(func=_pretrain)

    s = sub.add_parser("score", help="autoencoder scores and per-signal metrics for checkpoints and AE-Raw",
                       description="Score checkpoints (and the AE-Raw baseline); every setting is a field of "
                                   "ScoreJob (data, score, ae_seeds, eps_s), at its default unless --config or "
                                   "--set says otherwise.")
    s.add_argument("--checkpoint", type=Path, nargs="*", default=[])
    s.add_argument("--out", type=Path, required=True, help="folder for metrics.json, signal_free.json, table.md, figures, config.yaml")
    _config_arguments(s, "score.bottleneck=8 score.epochs=20 ae_seeds=[0,1] data.n_test=20000")
    s.add_argument("--no-ae-raw", action="store_true")
    s.add_argument("--device", default="auto")
    s.set_defaults(func=_score)

    n = sub.add_parser("nplm", help="the signal-agnostic NPLM test on raw inputs and on checkpoints' representations",
                       description="NPLM (kernel logistic regression of data against a reference, null and signal "
                                   "toys) on the test split; every setting is a field of NPLMJob (data, nplm), at "
                                   "its default unless --config or --set says otherwise. Toys run as Ray tasks; a "
                                   "rerun into the same --out skips the toys it finished.")
    n.add_argument("--checkpoint", type=Path, nargs="*", default=[])
    n.add_argument("--out", type=Path, required=True, help="folder for nplm.json, power.png, null.png, the toys")
    _config_arguments(n, "nplm.toys=50 nplm.centres=500 nplm.fractions=[0.005,0.01]")
    n.add_argument("--no-raw", action="store_true", help="not the raw preprocessed events")
    n.add_argument("--workers", type=_non_negative, default=None,
                   help="toys at once as Ray tasks, one CPU each; 0: in this process (default: every CPU here, "
                        "or 0 with CUDA, where the toys run on the GPU)")
    n.add_argument("--address", default=None, help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    n.add_argument("--device", default="auto")
    n.add_argument("--quiet", action="store_true", help="no progress bar")
    n.set_defaults(func=_nplm)

    from .method.names import MEAN, metric_key
    from .report.tracking import default_tracking_uri

    r = sub.add_parser("report", help="Markdown, CSV and figures of a study, read from MLflow")
    r.add_argument("--experiment", required=True, help="the study's name (its MLflow experiment)")
    r.add_argument("--tracking-uri", nargs="+", default=[default_tracking_uri()],
                   help="the MLflow store; several: one report of the study's executions in each (a study run in parts)")
    r.add_argument("--execution", nargs="+", default=["latest"], metavar="RUN_ID",
                   help="which executions of the study: latest (its newest parent run), all, or parent run ids")
    r.add_argument("--out", type=Path, required=True, help="report directory")
    r.add_argument("--metric", default=metric_key("auc", MEAN), help="what 'best' means (a metric key, e.g. val_auc/mean)")
    r.set_defaults(func=_report)

    e = sub.add_parser("export", help="register a trial's scorer (encoder, AEs, validity domain, model card) as an MLflow model")
    e.add_argument("--experiment", required=True, help="the study's name (its MLflow experiment)")
    e.add_argument("--tracking-uri", default=default_tracking_uri())
    e.add_argument("--name", required=True, help="the registered model's name")
    e.add_argument("--alias", default="candidate", help="the alias models:/NAME@ALIAS finds it by")
    e.add_argument("--trial", default=None, help="a trial run's id or name (default: the best by --metric)")
    e.add_argument("--metric", default=metric_key("auc", MEAN),
                   help="what 'best' means, e.g. the study's own objective val_auc/mean or proxy_auc/all")
    e.set_defaults(func=_export)

    a = sub.add_parser("apply", help="score every event of ADC2021-layout files with a registered model")
    a.add_argument("--model", required=True, help="models:/NAME@ALIAS (or models:/NAME/VERSION)")
    a.add_argument("--tracking-uri", default=default_tracking_uri(), help="where the model is registered")
    a.add_argument("--data", type=Path, required=True, help="an HDF5 file in the ADC2021 layout, or a folder of them")
    a.add_argument("--out", type=Path, required=True, help="where the scores and the per-file reports go")
    a.add_argument("--strict", type=float, default=None, metavar="FRACTION",
                   help="an error (exit 2) for a file with more than this fraction of its events outside the domain")
    a.set_defaults(func=_apply)

    u = sub.add_parser("ui", help="the MLflow UI on the study store, bound to 127.0.0.1")
    u.add_argument("--tracking-uri", default=default_tracking_uri())
    u.add_argument("--host", default="127.0.0.1", help="bind address (other than loopback: anyone reaching it sees the runs)")
    u.add_argument("--port", type=int, default=5000)
    u.add_argument("--experiment", default=None, help="print the URL of this study's trial table")
    u.add_argument("--screenshot", type=Path, default=None, help="render the trial table to this PNG and exit")
    u.add_argument("--width", type=int, default=2000)
    u.add_argument("--height", type=int, default=700)
    u.set_defaults(func=_ui)

    v = sub.add_parser("validate", help="check ADC2021 HDF5 files (keys, shapes, class ids, padding, cuts)")
    v.add_argument("files", nargs="*", type=Path)
    v.add_argument("--data-dir", type=Path, default=None, help="validate the five files of a data directory")
    v.add_argument("--no-selection", action="store_true", help="skip the selection-cut and trigger checks")
    v.add_argument("--reference", action="store_true",
                   help="compare the directory's multiplicities and MET with the published ADC2021 files' "
                        "(a table with the verdict per figure and plots)")
    v.add_argument("--out", type=Path, default=None, help="where --reference writes (default DATA_DIR/validation)")
    v.add_argument("--max-events", type=int, default=1_000_000, help="events read per file for --reference")
    v.set_defaults(func=_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as err:
        print(f"anomclr {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
