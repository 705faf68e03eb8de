"""Ray Tune studies: each trial = Ray Train pretraining -> representations -> AE -> per-signal metrics.

The search space is data: {"train.mix": {"grid": ["ao", "cs"]}, "train.temperature": {"loguniform":
[0.05, 0.5]}, ...}; keys are `<section>.<field>` of the data / model / train / score configs, or
`method` (a name of `names.methods()`: a contrastive loss, which sets `train.loss`, or "ae_raw", the AE-Raw
baseline: no encoder, the same AE on the preprocessed raw events). Without a `method` key a trial
runs the loss of `train.loss`. Grids run every combination (ablations); `search="tpe"` samples with
Optuna's TPE through Ray Tune.
With `eval_every` a trial is evaluated every so many epochs (continuing the same Ray Train run) and
`scheduler="asha"` stops poor trials early. Every config a study can produce is checked before Ray
starts. A study whose directory exists is restored (`Tuner.restore`) and finishes the trials that had
not, from their last evaluation; MLflow gets one nested run per trial.

`storage_path` is a path or an object-store URI (`s3://bucket/prefix`, see `storage`): Tune and Train
state, checkpoints, trial progress, the parent-run record and (with a local tracking store) MLflow
artifacts go there, so that trials on any node and a later restore find them. On a cluster of several
nodes, `run_study` first refuses what only one node would see (`raycluster.check_cluster`).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from ray.tune import Callback

from .configs import dump, dumps, from_plain
from .errors import ClusterError, ConfigError, DataError, PlaceError, StudyChangedError
from .events.dataset import DataConfig, Dataset, check_data, data_files, load_dataset
from .events.preprocess import Preprocessor
from .infra.monitoring import TRIALS_COMPLETED, TRIALS_EVALUATED, TRIALS_STARTED, StudyMonitor
from .infra.raycluster import check_cluster, connect
from .infra.storage import DEFAULT_STORAGE, Storage
from .method.evaluate import AE_SEEDS, Evaluation, ae_inputs, evaluate_splits
from .method.metrics import EPS_S, save_curves
from .method.model import ModelConfig
from .method.names import (BASELINE, EPS_S_KEY, MEAN, METHOD_KEY, applies, check_objective, labels_needed,
                           method as check_method, metric_key, objective_keys, parse_nplm_key)
from .method.score import ScoreConfig
from .export.domain import Domain, data_provenance
from .export.scorer import QUANTILES, SCORER_DIR, Scorer
from .report.figures import plot_curves
from .report.tracking import (CURVES_FILE, DEFAULT_TRACKING_URI, STORAGE_TAG, STUDY_CONFIG_FILE, STUDY_TAG, TRIAL_TAG,
                              absolute_uri, check_tracking, client, code_tags, end_trial_run, experiment_id, flatten,
                              log_trial, set_run_status, start_parent_run)
from .train import TrainConfig, check_batch_size, choose_device
from .train.distributed import ScalingSpec, load_result_checkpoint, pretrain_distributed

log = logging.getLogger(__name__)

SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "score": ScoreConfig}
DOMAINS = ("grid", "choice", "uniform", "loguniform", "randint")


@dataclass(frozen=True)
class StudyConfig:
    name: str
    search_space: dict[str, dict[str, list]]
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    scaling: ScalingSpec = field(default_factory=ScalingSpec)
    search: str = "grid"  # "grid" (all combinations) or "tpe" (Optuna)
    num_samples: int = 1  # tpe: trials; grid: repeats of the grid
    metric: str = metric_key("auc", MEAN)
    eps_s: float = EPS_S
    ae_seeds: tuple[int, ...] = AE_SEEDS
    tracking_uri: str = DEFAULT_TRACKING_URI
    storage_path: str = DEFAULT_STORAGE
    max_failures: int = 1  # Tune's: retries of a failed trial from its last evaluation (after `scaling.worker_restarts`)
    eval_every: int = 0  # evaluate (and report to Tune) every so many epochs; 0: only at the end
    scheduler: str = "fifo"  # "fifo" (every trial runs its budget) or "asha" (needs eval_every)
    asha_reduction: int = 2
    baseline: bool = False  # grid studies: also the AE-Raw trials every bar is read against (`grid_points`)
    # {method: {"<section>.<field>": value}}: what that method's trials run with on top of the sections
    # above (e.g. the choices of its own search; the search space's values are not overridden)
    method_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    # a study none of whose trials has run for this long while some wait (no node offers what a trial
    # needs, e.g. after the last such node was lost) fails, saying so; 0: it waits (an autoscaler adds nodes)
    stall_timeout_s: float = 1800.0

    def __post_init__(self):
        if self.search not in ("grid", "tpe"):
            raise ConfigError(f"StudyConfig.search: unknown {self.search!r}, expected 'grid' or 'tpe'")
        if self.scheduler not in ("fifo", "asha"):
            raise ConfigError(f"StudyConfig.scheduler: unknown {self.scheduler!r}, expected 'fifo' or 'asha'")
        if self.eval_every < 0 or (self.scheduler == "asha" and self.eval_every < 1):
            raise ConfigError(f"StudyConfig.eval_every must be >= 0, and >= 1 for ASHA; got {self.eval_every}")
        if self.num_samples < 1:
            raise ConfigError(f"StudyConfig.num_samples must be >= 1, got {self.num_samples}")
        if METHOD_KEY in self.search_space and "train.loss" in self.search_space:
            raise ConfigError(f"search space: {METHOD_KEY!r} sets train.loss; give one of the two keys")
        methods = next(iter(self.search_space[METHOD_KEY].values())) if METHOD_KEY in self.search_space else []
        if self.baseline and (self.search != "grid" or BASELINE in methods):
            raise ConfigError(f"StudyConfig.baseline adds the {BASELINE} trials to a grid study: it needs search='grid' "
                             f"and no {BASELINE!r} in the search space")
        for key, spec in self.search_space.items():
            if key != METHOD_KEY:
                _check_key(key, "search space key")
            if len(spec) != 1 or next(iter(spec)) not in DOMAINS:
                raise ConfigError(f"search space {key!r}: expected one of {', '.join(DOMAINS)}, got {spec}")
            if self.search == "tpe" and "grid" in spec:
                raise ConfigError(f"search space {key!r}: 'grid' needs search='grid'; use 'choice' with tpe")
        for name, settings in self.method_settings.items():
            check_method(name)
            for key in settings:
                _check_key(key, f"method_settings.{name}")
                if not applies(name, key):
                    raise ConfigError(f"method_settings.{name}.{key}: {name} has no encoder; this key changes nothing")
                if key in self.search_space or key == "train.loss":
                    raise ConfigError(f"method_settings.{name}.{key}: " + ("the method sets train.loss" if key == "train.loss"
                                      else "the search space varies this key; give it in one of the two"))
        check_objective(self.metric)  # names what a metric key looks like
        for sample in self.corner_samples():
            data = resolve(self, sample).data  # every reachable config is valid, or we fail here with its message
            if self.metric not in (objectives := objective_keys(data.signals, data.has_validation)):
                raise ConfigError(f"StudyConfig.metric {self.metric!r}: the trials report {', '.join(sorted(objectives))}"
                                 + ("" if data.has_validation else " (val_* metrics need data n_val, n_val_signal)"))

    def corner_samples(self) -> list[dict[str, Any]]:
        """Every grid/choice value combined with both ends of every range (and, with `baseline`, each of
        these as an AE-Raw trial): what configs must accept."""
        values = []
        for spec in self.search_space.values():
            kind, v = next(iter(spec.items()))
            values.append(list(v) if kind in ("grid", "choice") else [v[0], v[1] - 1 if kind == "randint" else v[1]])
        samples = [dict(zip(self.search_space, combo)) for combo in itertools.product(*values)]
        return samples + ([{**s, METHOD_KEY: BASELINE} for s in samples] if self.baseline else [])

    def grid_points(self) -> list[dict[str, Any]]:
        """The trials of the grid: every combination of the `grid` values, then, with `baseline`, one
        AE-Raw trial per combination of the grid values that change it (`names.applies`: not the
        encoder's and its training's keys)."""
        grid = {k: spec["grid"] for k, spec in self.search_space.items() if "grid" in spec}
        points = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]
        if self.baseline:
            keys = [k for k in grid if k != METHOD_KEY and applies(BASELINE, k)]
            kept = dict.fromkeys(tuple((k, p[k]) for k in keys) for p in points)  # in order, once each
            points += [{**dict(k), METHOD_KEY: BASELINE} for k in kept]
        return points


def _check_key(key: str, where: str) -> None:
    section, _, name = key.partition(".")
    if section not in SECTIONS or name not in {f.name for f in dataclasses.fields(SECTIONS[section])}:
        raise ConfigError(f"{where} {key!r}: expected <section>.<field> with section in {', '.join(SECTIONS)} "
                          "and a field of that config")


@dataclass(frozen=True)
class TrialConfig:
    """One trial's configs: the study's with its sampled values put in, and its method (a contrastive loss
    of `losses.LOSSES`, also its `train.loss`, or "ae_raw")."""

    method: str
    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    score: ScoreConfig

    def sections(self) -> dict[str, Any]:
        """{section name: its config}, as `SECTIONS` names them."""
        return {s: getattr(self, s) for s in SECTIONS}


def resolve(study: StudyConfig, sample: dict[str, Any]) -> TrialConfig:
    """The configs of the trial that `sample` ({search-space key: value}) makes, checked together."""
    sample = {k: v.item() if isinstance(v, np.generic) else v for k, v in sample.items()}
    method = check_method(sample.pop(METHOD_KEY, None) or sample.get("train.loss", study.train.loss))
    updates: dict[str, dict] = {s: {} for s in SECTIONS}
    for key, value in {**study.method_settings.get(method.name, {}), **sample}.items():
        section, _, name = key.partition(".")
        updates[section][name] = value
    if method.contrastive:
        updates["train"]["loss"] = method.name
    cfgs = TrialConfig(method.name, **{s: dataclasses.replace(getattr(study, s), **updates[s]) for s in SECTIONS})
    cfgs.score.check_input_dim(cfgs.model.rep_dim if method.contrastive else cfgs.score.raw_dim)
    check_batch_size(cfgs.train, cfgs.data.n_train, study.scaling.num_workers)
    cfgs.score.check_training_events(cfgs.data.n_ae_train)
    if (nplm := cfgs.score.nplm) is not None:  # its toys draw from the test split
        nplm.check_pools(cfgs.data.n_test, cfgs.data.n_test_signal, "data.n_test", "data.n_test_signal")
    return cfgs


def evaluation_epochs(study: StudyConfig, epochs: int) -> list[int]:
    """Epoch counts after which a trial is evaluated: every `eval_every`, and at the end."""
    if not study.eval_every:
        return [epochs]
    return sorted({*range(study.eval_every, epochs, study.eval_every), epochs})


GRID_POINT = "grid_point"  # the param-space key of a grid study's trials (`StudyConfig.grid_points`)


def _param_space(study: StudyConfig) -> dict:
    """Tune's param space: the grid as one `grid_search` over its points (so that the baseline's trials
    need not be a product), the other domains sampled for each. (Plain values only: Tune's restore
    replaces functions such as `sample_from` by placeholders.)"""
    from ray import tune

    make = {"choice": tune.choice, "uniform": lambda v: tune.uniform(*v),
            "loguniform": lambda v: tune.loguniform(*v), "randint": lambda v: tune.randint(*v)}
    space = {key: make[kind](v) for key, spec in study.search_space.items() for kind, v in spec.items()
             if kind != "grid"}
    points = study.grid_points()
    return space | ({GRID_POINT: tune.grid_search(points)} if points != [{}] else {})


def sample_of(config: dict[str, Any]) -> dict[str, Any]:
    """A trial's Tune config as the flat {key: value} of the search space (its grid point unpacked)."""
    return {**config.get(GRID_POINT, {}), **{k: v for k, v in config.items() if k != GRID_POINT}}


def trial_label(trial) -> str:
    """What Tune's console table calls a trial (its first column): the values the study varies, e.g.
    "method=clr seed=1 00003" (the config column would cut a grid point off at 20 characters)."""
    parts = [f"{k.partition('.')[2] or k}={v:.4g}" if isinstance(v, float) else f"{k.partition('.')[2] or k}={v}"
             for k, v in sample_of(trial.config).items()]
    return " ".join([*parts, trial.trial_id.rsplit("_", 1)[-1]])


def _run_name(method: str, sample: dict[str, Any], trial_id: str) -> str:
    """"anomclr_plus mix=ao seed=1 00003": what the MLflow UI lists."""
    parts = [method]
    for key, v in sample.items():
        if key not in (METHOD_KEY, "train.loss"):
            parts.append(f"{key.partition('.')[2]}={v:.4g}" if isinstance(v, float) else f"{key.partition('.')[2]}={v}")
    return " ".join([*parts, trial_id.rsplit("_", 1)[-1]])


@dataclass
class _Trial:
    """One trial in its Tune process: its configs and names, and what it had done before a restore."""

    study: StudyConfig
    id: str
    name: str  # what the MLflow UI lists
    cfgs: TrialConfig
    params: dict[str, Any]  # what MLflow records: the method and every section's config
    progress: dict[str, float]  # epochs trained and evaluated, wall and evaluation seconds so far
    started: float  # perf_counter() at the trial's start, restored time included
    monitor: StudyMonitor

    @classmethod
    def begin(cls, sample: dict[str, Any], study: StudyConfig) -> _Trial:
        from ray import tune

        sample = sample_of(sample)
        trial_id, cfgs = tune.get_context().get_trial_id(), resolve(study, sample)
        progress = {"epochs": 0, "wall_s": 0.0, "evaluation_s": 0.0}
        if (ck := tune.get_checkpoint()) is not None:
            with ck.as_directory() as d:
                progress |= json.loads((Path(d) / "progress.json").read_text())
        monitor = StudyMonitor(study.name)
        monitor.count(TRIALS_STARTED)
        params = {METHOD_KEY: cfgs.method, EPS_S_KEY: study.eps_s, **cfgs.sections()}
        return cls(study, trial_id, _run_name(cfgs.method, sample, trial_id), cfgs, params, progress,
                   time.perf_counter() - progress["wall_s"], monitor)

    @property
    def method(self) -> str:
        return self.cfgs.method

    @property
    def budget(self) -> int:
        return self.cfgs.train.epochs

    def evaluations_left(self) -> list[int]:
        """The epoch counts still to be evaluated at (the baseline trains nothing: once)."""
        epochs = [self.budget] if self.method == BASELINE else evaluation_epochs(self.study, self.budget)
        return [e for e in epochs if e > self.progress["epochs"]]

    def embedding(self, data: Dataset, epochs: int) -> tuple[Preprocessor, torch.nn.Module | None, dict, str | None]:
        """(the preprocessing, the encoder on the CPU or None for the baseline, the new part of the loss
        curve, the checkpoint path): what the AE's inputs are made of, the encoder pretrained (or
        resumed) to `epochs`."""
        pre = Preprocessor.fit(data.train)  # as pretraining fits it: the data are not read again for it
        if self.method == BASELINE:
            return pre, None, {}, None
        storage = Storage.at(self.study.storage_path).child(self.study.name, "train")
        result = pretrain_distributed(self.cfgs.data, self.cfgs.model,
                                      dataclasses.replace(self.cfgs.train, epochs=epochs), self.study.scaling,
                                      storage.uri, self.id, pre)
        model, pre, _, history = load_result_checkpoint(result, torch.device("cpu"))
        curve = {"train/loss": {e: v for e, v in enumerate(history) if e >= self.progress["epochs"]}}
        return pre, model, curve, result.checkpoint.path

    def evaluation_resources(self) -> dict[str, Any]:
        """What a trial's evaluation reserves (`_evaluate`): the CPUs (and GPU) its Train workers had, which
        they have released by then, and the scaling's custom resources, so that it runs where the trial may."""
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        s = self.study.scaling
        # outside the trial's placement group (Tune's, which holds the trial process's memory only), as the
        # Train workers are
        return {"num_cpus": s.num_workers * s.cpus_per_worker, "num_gpus": 1 if s.use_gpu else 0,
                "resources": dict(s.custom_resources),
                "scheduling_strategy": PlacementGroupSchedulingStrategy(placement_group=None)}

    def advance(self, epochs: int, evaluation_s: float) -> dict[str, float]:
        """Record an evaluation after `epochs` that took `evaluation_s`; its timing metrics."""
        wall = time.perf_counter() - self.started
        evaluation = self.progress["evaluation_s"] + evaluation_s
        self.progress = {"epochs": epochs, "wall_s": wall, "evaluation_s": evaluation}
        cpus = self.study.scaling.num_workers * self.study.scaling.cpus_per_worker
        return {"epoch": epochs, "trial/wall_s": wall, "trial/cpu_hours": wall * cpus / 3600,
                "trial/evaluation_s": evaluation, "trial/evaluation_fraction": evaluation / wall}

    def log_and_report(self, ev: Evaluation, metrics: dict[str, float], curves: dict, checkpoint: str | None,
                       parent: _Parent, scorer: Scorer | None = None) -> None:
        """The evaluation into MLflow (metrics, curves, figures, config) and to Tune, with the progress
        a restore resumes from."""
        import ray
        from ray import tune

        epochs = self.progress["epochs"]
        with tempfile.TemporaryDirectory() as tmp:
            files = plot_curves({self.method: ev.curves}, tmp)
            files.append(Path(tmp) / CURVES_FILE)
            save_curves(ev.curves, files[-1])
            files.append(Path(tmp) / "trial.yaml")
            files[-1].write_text(dumps({**self.params, "checkpoint": checkpoint}))
            folders = {} if scorer is None else {SCORER_DIR: scorer.save(Path(tmp) / SCORER_DIR)}
            log_trial(self.study.tracking_uri, parent.exp_id, parent.run_id, self.id, self.name, self.params, metrics,
                      epochs, curves, files, finished=epochs == self.budget,
                      start_time=time.time() - self.progress["wall_s"], node=ray.get_runtime_context().get_node_id(),
                      tags=parent.tags, folders=folders)
            state = Path(tmp) / "progress"
            state.mkdir()
            (state / "progress.json").write_text(json.dumps(self.progress))
            self.monitor.count(TRIALS_EVALUATED)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(state))


@dataclass(frozen=True)
class _Parent:
    """Where a study's trials log: its experiment, its parent run, the tags every trial run carries."""

    exp_id: str
    run_id: str
    tags: dict[str, str]


def _evaluate(pre: Preprocessor, model: torch.nn.Module | None, data: Dataset, score: ScoreConfig,
              ae_seeds: tuple[int, ...], eps_s: float, scorer_of: dict | None = None
              ) -> tuple[Evaluation, dict[str, float], Scorer | None]:
    """A trial's evaluation as a Ray task that holds the CPUs it computes on (`evaluation_resources`), with
    as many torch threads: (the evaluation, its cost metrics, and, given `scorer_of` (the method and what
    the trial is), the `Scorer` that rebuilds its anomaly score)."""
    import ray

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    torch.set_num_threads(max(1, int(cpus)))
    device = choose_device("auto")  # the task's own: a GPU only where it reserved one
    embed = ae_inputs(pre, None if model is None else model.to(device), device, one_hot=score.raw_one_hot)
    t0 = time.perf_counter()
    ev = evaluate_splits(embed, data, score, ae_seeds, eps_s)
    scorer = None
    if scorer_of is not None:
        events = data.train if data.ae_train is None else np.concatenate([data.train, data.ae_train])
        scorer = Scorer(scorer_of["method"], pre, None if model is None else model.cpu(), ev.autoencoders, score,
                        Domain.of(events, data_provenance(scorer_of["data_dir"])), {}, scorer_of["info"])
        held_out = scorer.scores(data.test_background, device)[0]
        scorer.reference = {q: float(np.quantile(held_out, q)) for q in QUANTILES}
    return ev, {"trial/evaluation_s_this": time.perf_counter() - t0, "trial/evaluation_cpus": cpus,
                "trial/evaluation_threads": torch.get_num_threads()}, scorer


def _trial(sample: dict[str, Any], study: StudyConfig, parent: _Parent) -> None:
    """A Tune trial: pretrain (or not, for the baseline), evaluate, log and report, at every evaluation.
    NPLM runs at the final evaluation only, unless the study's objective is an NPLM figure."""
    import ray

    trial = _Trial.begin(sample, study)
    data = load_dataset(trial.cfgs.data)
    shared = ray.put(data)  # one copy for every evaluation's task
    evaluate = ray.remote(_evaluate).options(**trial.evaluation_resources())
    ae_seeds = tuple(1000 * trial.cfgs.train.seed + s for s in study.ae_seeds)  # distinct per CLR seed
    every_nplm = parse_nplm_key(study.metric) is not None  # else NPLM's toys once, at the end
    for epochs in trial.evaluations_left():
        pre, model, curves, checkpoint = trial.embedding(data, epochs)
        final = epochs == trial.budget
        score = trial.cfgs.score if every_nplm or final else dataclasses.replace(trial.cfgs.score, nplm=None)
        scorer_of = {"method": trial.method, "data_dir": trial.cfgs.data.data_dir, "info": {
            "study": study.name, "trial": trial.id, "name": trial.name, "ae_seeds": list(ae_seeds),
            "train_seed": trial.cfgs.train.seed, "epochs": epochs}} if final else None
        ev, cost, scorer = ray.get(evaluate.remote(pre, model, shared, score, ae_seeds, study.eps_s, scorer_of))
        metrics = trial.advance(epochs, cost.pop("trial/evaluation_s_this"))
        trial.log_and_report(ev, {**ev.flat_metrics(), **metrics, **cost}, curves, checkpoint, parent, scorer)
    trial.monitor.count(TRIALS_COMPLETED)


# A trial's own process (Tune's function trainable: it starts Ray Train, then scores) reserves memory but
# no CPU, so that the Train workers' CPUs add up to the cluster's: with any CPU here, two 1-CPU trials on
# a 2-CPU machine would need 2.02 CPUs and train one at a time. It computes nothing itself: training runs
# in the Train workers and the evaluation in a task that reserves the CPUs the workers released
# (`_evaluate`). It also takes the scaling's custom resources, so that the trial runs on the nodes its
# Train workers need.
TRIAL_DRIVER_RESOURCES = {"cpu": 0, "memory": 512 * 2**20}


def concurrent_trials(scaling: ScalingSpec, cluster: dict[str, float]) -> int:
    """How many trials' Train worker groups fit on the cluster at once (at least one)."""
    fits = cluster.get("CPU", 1) // (scaling.num_workers * scaling.cpus_per_worker)
    if scaling.use_gpu:
        fits = min(fits, cluster.get("GPU", 0) // scaling.num_workers)
    return max(1, int(fits))


def one_line(err: BaseException | str) -> str:
    """The line of a (Ray-wrapped) exception that names it: "ValueError: ...", not the traceback."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()] or [type(err).__name__]
    named = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Interrupt)\b", line)]
    return re.sub(r"^(?:\w+\.)+(?=\w+:)", "", (named or lines)[-1])  # "pkg.mod.ValueError: m" -> "ValueError: m"


def _end_trial(study: StudyConfig, parent: _Parent, trial_id: str, config: dict, last: dict | None,
               error: BaseException | str | None) -> None:
    """End a trial's MLflow run with its true status: FAILED with the error's first line, else FINISHED,
    tagged as stopped early (and at which epoch) when it ended before its budget."""
    sample = sample_of(config)
    cfgs = resolve(study, sample)
    reached = (last or {}).get("epoch")
    stopped = reached if error is None and reached is not None and reached < cfgs.train.epochs else None
    end_trial_run(study.tracking_uri, parent.exp_id, parent.run_id, trial_id,
                  error=None if error is None else one_line(error), stopped_at=stopped,
                  trial_name=_run_name(cfgs.method, sample, trial_id))


class _RunStatus(Callback):
    """Tune's callback on the driver: ends each trial's MLflow run as Tune ends the trial (finished its
    budget, stopped by the scheduler, or failed for good), so that the UI tells the truth while the study
    runs. A tracking store out of reach leaves the run as it is (the end of the study tries again)."""

    def __init__(self, study: StudyConfig, parent: _Parent):
        self.study, self.parent = study, parent

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._end(trial, None)

    def on_trial_error(self, iteration, trials, trial, **info):
        # Tune has just written the error to the trial's local error file (its copy in storage comes later)
        error = Path(trial.error_file).read_text() if trial.error_file and Path(trial.error_file).exists() else None
        self._end(trial, error or "the trial failed (Tune kept no error)")

    def _end(self, trial, error) -> None:
        from mlflow.exceptions import MlflowException

        try:
            _end_trial(self.study, self.parent, trial.trial_id, trial.config, trial.last_result, error)
        except (MlflowException, OSError) as err:
            log.warning("trial %s: its MLflow run's status was not set now (%s)", trial.trial_id, one_line(err))


class _Stalled(Callback):
    """Fails the study in one line, instead of waiting for ever, when trials wait and none has run for
    `timeout_s`: no node of the cluster offers what a trial needs (its CPUs, GPU, custom resources)."""

    def __init__(self, timeout_s: float, needs: dict[str, float]):
        self.timeout_s, self.needs, self.since = timeout_s, needs, None

    def on_step_end(self, iteration, trials, **info):
        import ray

        waiting = sum(t.status == "PENDING" for t in trials)
        if not self.timeout_s or not waiting or any(t.status == "RUNNING" for t in trials):
            self.since = None
            return
        self.since = self.since or time.monotonic()
        if time.monotonic() - self.since > self.timeout_s:
            offered = {k: v for k, v in ray.cluster_resources().items() if not k.startswith(("node:", "memory", "object_store"))}
            raise ClusterError(f"no trial has run for {self.timeout_s:.0f} s while {waiting} wait: no node of the Ray cluster "
                               f"offers what a trial needs ({self.needs}; the cluster offers {offered}); add such a "
                               "node and run the same command to resume the study (stall_timeout_s sets the wait)")


# a trial's error that every retry would meet again: the data or the config, not a node or a service
INPUT_ERRORS = (DataError, ConfigError)


def _input_error(trial) -> BaseException | None:
    """The trial's error, where it is an `INPUT_ERRORS` (found through Ray's wrappers), else None."""
    err, seen = trial.get_pickled_error(), 0
    while err is not None and seen < 8:
        if isinstance(err, INPUT_ERRORS):
            return err
        err, seen = getattr(err, "cause", None) or err.__cause__, seen + 1
    return None


class _InputErrorStops(Callback):
    """A trial that failed on its input (a value in an event file that changed after the study's checks,
    a config no check foresaw) would fail again on every retry, and every other trial reading the same
    input with it: the study stops at once and raises that error (one line, naming the file), instead of
    spending Tune's retries (`max_failures`) that node and server failures need. Its run ends FAILED."""

    # {parent run id: the error}: Tune wraps what a callback raises, and a restored study runs the
    # callbacks it pickled, not new ones: the driver finds the error here
    stopped_by: dict[str, BaseException] = {}

    def __init__(self, study: StudyConfig, parent: _Parent):
        self.study, self.parent = study, parent

    def on_trial_recover(self, iteration, trials, trial, **info):  # Tune has scheduled a retry: cancelled
        self._stop(trial)

    def on_trial_error(self, iteration, trials, trial, **info):  # no retries left (max_failures=0)
        self._stop(trial)

    def _stop(self, trial) -> None:
        if (err := _input_error(trial)) is not None:
            _end_trial(self.study, self.parent, trial.trial_id, trial.config, trial.last_result, err)
            self.stopped_by[self.parent.run_id] = err
            raise err


def _running_trial_runs(study: StudyConfig, parent: _Parent) -> list:
    """The study's trial runs that MLflow still shows RUNNING."""
    return client(study.tracking_uri).search_runs([parent.exp_id], filter_string=(
        f"tags.`mlflow.parentRunId` = '{parent.run_id}' and attributes.status = 'RUNNING'"))


def _abort_runs(study: StudyConfig, parent: _Parent, status: str) -> None:
    """A study that ended without Tune's results: its parent run ends with `status`, and every trial run
    still RUNNING (stopped with it) KILLED. A restore reopens the parent; a resumed trial logs into its
    run again and ends it."""
    from mlflow.exceptions import MlflowException

    try:
        for run in _running_trial_runs(study, parent):
            set_run_status(study.tracking_uri, run.info.run_id, "KILLED")
        set_run_status(study.tracking_uri, parent.run_id, status)
    except (MlflowException, OSError) as err:  # the error that ended the study is the one to see
        log.warning("the study's MLflow runs keep their status (%s)", one_line(err))


def _close_runs(study: StudyConfig, parent: _Parent, results) -> str:
    """After `fit`: every trial run that is still RUNNING (e.g. its end came while the driver was down)
    gets its status, and the parent run the study's: FINISHED, FAILED (a trial failed) or KILLED (trials
    left unfinished). Returns the parent's status."""
    running = {run.data.tags.get(TRIAL_TAG) for run in _running_trial_runs(study, parent)}
    for r in results:
        if (trial_id := (r.metrics or {}).get("trial_id")) in running:  # None: never reported, the callback ended it
            _end_trial(study, parent, trial_id, r.config, r.metrics, r.error)
    unfinished = len(results) - results.num_terminated - results.num_errors
    status = "FAILED" if results.num_errors else "KILLED" if unfinished else "FINISHED"
    set_run_status(study.tracking_uri, parent.run_id, status)
    return status


def study_diff(recorded: StudyConfig, study: StudyConfig) -> list[str]:
    """The fields in which `study` differs from `recorded`: "train.epochs: 2 -> 3", one per field."""
    old, new = flatten(recorded), flatten(study)
    return [f"{k}: {old.get(k, '(none)')} -> {new.get(k, '(none)')}" for k in sorted(old.keys() | new.keys())
            if old.get(k) != new.get(k)]


def _check_restore(study: StudyConfig, storage: Storage, recorded_text: str | None, record: str) -> None:
    """A restored study must be the one that was started: refuse another config with what changed."""
    if recorded_text is None:
        return  # started by a version that recorded no config: its parent run's study.yaml says what it was
    recorded = from_plain(StudyConfig, yaml.safe_load(recorded_text), record)
    if changed := study_diff(recorded, study):
        raise StudyChangedError(
            f"study {study.name!r} in {storage.uri} was started with another config ({'; '.join(changed[:6])}"
            f"{f'; {len(changed) - 6} more' if len(changed) > 6 else ''}): to resume it, run it as it was "
            f"(--config {storage.uri_of(record)}); to run this config, give it another name (--set name=...) "
            "or another --storage")


def _find_parent(study: StudyConfig, exp_id: str, storage: Storage) -> str:
    """The parent run of a restored study whose record in storage is lost: the one run in MLflow tagged
    with the study's name and storage, or a refusal (never a second parent that would duplicate every trial)."""
    found = client(study.tracking_uri).search_runs(
        [exp_id], filter_string=f"tags.`{STUDY_TAG}` = '{study.name}' and tags.`{STORAGE_TAG}` = '{storage.uri_of(study.name)}'")
    parents = [r for r in found if "mlflow.parentRunId" not in r.data.tags]
    if len(parents) != 1:
        raise PlaceError(
            f"study {study.name!r}: its Tune state is in {storage.uri} but the record of its MLflow parent run is "
            f"lost and {len(parents)} parent runs in {study.tracking_uri} match its name and storage; resume it "
            "with the storage and tracking store it was started with, or start it anew under another name or --storage")
    return parents[0].info.run_id


SQLITE_WRITERS = 32  # trials at once above which a study says that the SQLite store serialises their logging


def store_limit(tracking_uri: str, concurrent: int) -> str | None:
    """What a study says before it starts when its tracking store will slow its trials down, else None."""
    if tracking_uri.startswith("sqlite:") and concurrent > SQLITE_WRITERS:
        return (f"{concurrent} trials at once on the SQLite store {tracking_uri}: their writes queue on one file "
                "lock (128 at once took 3-4 minutes per trial's logging, docs/reliability.md); a tracking server on "
                "a database serves them better (--tracking-uri)")
    return None

# The study's records in its storage, beside Tune's state: the MLflow parent run's id and the study's config
PARENT_RECORD, CONFIG_RECORD = "{}.mlflow_parent", "{}.study.yaml"


def run_study(study: StudyConfig, address: str | None = None):
    """Run (or resume) the study; returns the Tune ResultGrid. A restore must run the study that was
    started (`StudyChangedError` with what changed, before any work); the parent run ends with the
    study's outcome and each trial run with its own."""
    import ray
    from ray import tune

    # trials run in their own working directories: make every path absolute first
    storage = Storage.at(study.storage_path)
    study = dataclasses.replace(study, tracking_uri=absolute_uri(study.tracking_uri), storage_path=storage.uri,
                                data=dataclasses.replace(study.data, data_dir=str(Path(study.data.data_dir).resolve())))
    check_tracking(study.tracking_uri)
    storage.check_writable()
    fs, experiment_path = storage.filesystem, storage.path(study.name)
    restoring = tune.Tuner.can_restore(experiment_path, storage_filesystem=fs)
    parent_record, config_record = PARENT_RECORD.format(study.name), CONFIG_RECORD.format(study.name)
    if restoring:
        _check_restore(study, storage, storage.read_text(config_record), config_record)
    trials = [resolve(study, sample) for sample in study.corner_samples()]
    for cfgs in trials:  # data files exist, have the layout, enough events and the labels supcon needs
        check_data(cfgs.data, labels=labels_needed(cfgs.method))
    datas = list(dict.fromkeys(cfgs.data for cfgs in trials))
    for data in datas:  # every event a trial will read, checked here (a second or two) rather than in a trial
        load_dataset(data)
    connect(address)
    check_cluster(storage, study.tracking_uri, sorted({f for data in datas for f in data_files(data)}))
    exp_id = experiment_id(study.tracking_uri, study.name, storage.uri_of("mlartifacts"))
    tags = code_tags()
    if restoring:
        parent_run_id = (storage.read_text(parent_record) or "").strip() or _find_parent(study, exp_id, storage)
        storage.write_text(parent_run_id, parent_record)
        set_run_status(study.tracking_uri, parent_run_id, "RUNNING")  # reopened until this execution ends
    else:
        with tempfile.TemporaryDirectory() as tmp:
            config = dump(study, Path(tmp) / STUDY_CONFIG_FILE)  # the study as `--config` takes it back
            parent_run_id = start_parent_run(study.tracking_uri, exp_id, study.name, study,
                                             {**tags, STORAGE_TAG: storage.uri_of(study.name)}, [config])
        storage.write_text(dumps(study), config_record)
        storage.write_text(parent_run_id, parent_record)
    concurrent = concurrent_trials(study.scaling, ray.cluster_resources())
    if warning := store_limit(study.tracking_uri, concurrent):
        print(f"anomclr: {warning}", file=sys.stderr)
    parent = _Parent(exp_id, parent_run_id, tags)
    trainable = tune.with_resources(tune.with_parameters(_trial, study=study, parent=parent),
                                    {**TRIAL_DRIVER_RESOURCES, **study.scaling.custom_resources})
    s = study.scaling
    needs = {"CPU": s.num_workers * s.cpus_per_worker, **({"GPU": s.num_workers} if s.use_gpu else {}),
             **{k: v * s.num_workers for k, v in s.custom_resources.items()}}
    if restoring:
        tuner = tune.Tuner.restore(experiment_path, trainable, resume_errored=True, storage_filesystem=fs)
    else:
        search_alg, scheduler = None, None
        if study.search == "tpe":
            from ray.tune.search.optuna import OptunaSearch

            search_alg = OptunaSearch(metric=study.metric, mode="max")
        if study.scheduler == "asha":
            from ray.tune.schedulers import ASHAScheduler

            max_t = max(resolve(study, s).train.epochs for s in study.corner_samples())
            scheduler = ASHAScheduler(time_attr="epoch", max_t=max_t, grace_period=study.eval_every,
                                      reduction_factor=study.asha_reduction)
        tuner = tune.Tuner(
            trainable,
            param_space=_param_space(study),
            tune_config=tune.TuneConfig(num_samples=study.num_samples, max_concurrent_trials=concurrent,
                                        search_alg=search_alg, scheduler=scheduler, metric=study.metric, mode="max",
                                        trial_name_creator=trial_label),
            run_config=tune.RunConfig(name=study.name, storage_path=storage.path(), storage_filesystem=fs,
                                      failure_config=tune.FailureConfig(max_failures=study.max_failures),
                                      callbacks=[_RunStatus(study, parent), _InputErrorStops(study, parent),
                                                 _Stalled(study.stall_timeout_s, needs)]),
        )
    try:
        results = tuner.fit()
    except BaseException:  # stopped (a trial's input error), interrupted or crashed: the runs say so
        input_error = _InputErrorStops.stopped_by.pop(parent_run_id, None)
        _abort_runs(study, parent, "KILLED" if input_error is None else "FAILED")
        if input_error is not None:
            raise input_error from None
        raise
    _close_runs(study, parent, results)
    return results
