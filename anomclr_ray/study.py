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
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .configs import dump, dumps
from .events.dataset import DataConfig, Dataset, check_data, data_files, load_dataset
from .events.preprocess import Preprocessor
from .infra.monitoring import TRIALS_COMPLETED, TRIALS_EVALUATED, TRIALS_STARTED, StudyMonitor
from .infra.raycluster import check_cluster, connect
from .infra.storage import DEFAULT_STORAGE, Storage
from .method.evaluate import AE_SEEDS, Evaluation, ae_inputs, evaluate_splits
from .method.metrics import EPS_S, save_curves
from .method.model import ModelConfig
from .method.names import (BASELINE, EPS_S_KEY, MEAN, METHOD_KEY, applies, check_objective, labels_needed, method as check_method, metric_key,
                           objective_keys)
from .method.score import ScoreConfig
from .report.figures import plot_curves
from .report.tracking import (DEFAULT_TRACKING_URI, absolute_uri, check_tracking, code_tags, experiment_id, log_trial,
                              start_parent_run)
from .train import TrainConfig, check_batch_size, choose_device
from .train.distributed import ScalingSpec, load_result_checkpoint, pretrain_distributed

SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "score": ScoreConfig}
DOMAINS = ("grid", "choice", "uniform", "loguniform", "randint")
STUDY_CONFIG_FILE = "study.yaml"  # the parent run's artifact: the whole StudyConfig, read back by `--config`


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
    max_failures: int = 1
    eval_every: int = 0  # evaluate (and report to Tune) every so many epochs; 0: only at the end
    scheduler: str = "fifo"  # "fifo" (every trial runs its budget) or "asha" (needs eval_every)
    asha_reduction: int = 2
    baseline: bool = False  # grid studies: also the AE-Raw trials every bar is read against (`grid_points`)

    def __post_init__(self):
        if self.search not in ("grid", "tpe"):
            raise ValueError(f"StudyConfig.search: unknown {self.search!r}, expected 'grid' or 'tpe'")
        if self.scheduler not in ("fifo", "asha"):
            raise ValueError(f"StudyConfig.scheduler: unknown {self.scheduler!r}, expected 'fifo' or 'asha'")
        if self.eval_every < 0 or (self.scheduler == "asha" and self.eval_every < 1):
            raise ValueError(f"StudyConfig.eval_every must be >= 0, and >= 1 for ASHA; got {self.eval_every}")
        if self.num_samples < 1:
            raise ValueError(f"StudyConfig.num_samples must be >= 1, got {self.num_samples}")
        if METHOD_KEY in self.search_space and "train.loss" in self.search_space:
            raise ValueError(f"search space: {METHOD_KEY!r} sets train.loss; give one of the two keys")
        methods = next(iter(self.search_space[METHOD_KEY].values())) if METHOD_KEY in self.search_space else []
        if self.baseline and (self.search != "grid" or BASELINE in methods):
            raise ValueError(f"StudyConfig.baseline adds the {BASELINE} trials to a grid study: it needs search='grid' "
                             f"and no {BASELINE!r} in the search space")
        for key, spec in self.search_space.items():
            section, _, name = key.partition(".")
            if key != METHOD_KEY and (section not in SECTIONS
                                      or name not in {f.name for f in dataclasses.fields(SECTIONS[section])}):
                raise ValueError(f"search space key {key!r}: expected {METHOD_KEY!r} or <section>.<field> with "
                                 f"section in {', '.join(SECTIONS)} and a field of that config")
            if len(spec) != 1 or next(iter(spec)) not in DOMAINS:
                raise ValueError(f"search space {key!r}: expected one of {', '.join(DOMAINS)}, got {spec}")
            if self.search == "tpe" and "grid" in spec:
                raise ValueError(f"search space {key!r}: 'grid' needs search='grid'; use 'choice' with tpe")
        check_objective(self.metric)  # names what a metric key looks like
        for sample in self.corner_samples():
            data = resolve(self, sample).data  # every reachable config is valid, or we fail here with its message
            if self.metric not in (objectives := objective_keys(data.signals, data.has_validation)):
                raise ValueError(f"StudyConfig.metric {self.metric!r}: the trials report {', '.join(sorted(objectives))}"
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
    for key, value in sample.items():
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
    need not be a product), the other domains sampled for each."""
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
    device: Any  # where this process embeds and fits the AEs (chosen once)

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
                   time.perf_counter() - progress["wall_s"], monitor, choose_device("auto"))

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

    def embedding(self, data: Dataset, epochs: int) -> tuple[Callable, dict, str | None]:
        """(events -> inputs of the AE, the new part of the loss curve, the checkpoint path): the raw
        preprocessed events for the baseline, else the encoder pretrained (or resumed) to `epochs`."""
        pre = Preprocessor.fit(data.train)  # as pretraining fits it: the data are not read again for it
        if self.method == BASELINE:
            return ae_inputs(pre, one_hot=self.cfgs.score.raw_one_hot), {}, None
        storage = Storage.at(self.study.storage_path).child(self.study.name, "train")
        result = pretrain_distributed(self.cfgs.data, self.cfgs.model,
                                      dataclasses.replace(self.cfgs.train, epochs=epochs), self.study.scaling,
                                      storage.uri, self.id, pre)
        model, pre, _, history = load_result_checkpoint(result, self.device)
        curve = {"train/loss": {e: v for e, v in enumerate(history) if e >= self.progress["epochs"]}}
        return ae_inputs(pre, model, self.device), curve, result.checkpoint.path

    def advance(self, epochs: int, evaluation_s: float) -> dict[str, float]:
        """Record an evaluation after `epochs` that took `evaluation_s`; its timing metrics."""
        wall = time.perf_counter() - self.started
        evaluation = self.progress["evaluation_s"] + evaluation_s
        self.progress = {"epochs": epochs, "wall_s": wall, "evaluation_s": evaluation}
        cpus = self.study.scaling.num_workers * self.study.scaling.cpus_per_worker
        return {"epoch": epochs, "trial/wall_s": wall, "trial/cpu_hours": wall * cpus / 3600,
                "trial/evaluation_s": evaluation, "trial/evaluation_fraction": evaluation / wall}

    def log_and_report(self, ev: Evaluation, metrics: dict[str, float], curves: dict, checkpoint: str | None,
                       parent: _Parent) -> None:
        """The evaluation into MLflow (metrics, curves, figures, config) and to Tune, with the progress
        a restore resumes from."""
        import ray
        from ray import tune

        epochs = self.progress["epochs"]
        with tempfile.TemporaryDirectory() as tmp:
            files = plot_curves({self.method: ev.curves}, tmp)
            files.append(Path(tmp) / "curves.npz")
            save_curves(ev.curves, files[-1])
            files.append(Path(tmp) / "trial.yaml")
            files[-1].write_text(dumps({**self.params, "checkpoint": checkpoint}))
            log_trial(self.study.tracking_uri, parent.exp_id, parent.run_id, self.id, self.name, self.params, metrics,
                      epochs, curves, files, finished=epochs == self.budget,
                      start_time=time.time() - self.progress["wall_s"], node=ray.get_runtime_context().get_node_id(),
                      tags=parent.tags)
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


def _trial(sample: dict[str, Any], study: StudyConfig, parent: _Parent) -> None:
    """A Tune trial: pretrain (or not, for the baseline), evaluate, log and report, at every evaluation."""
    trial = _Trial.begin(sample, study)
    data = load_dataset(trial.cfgs.data)
    ae_seeds = tuple(1000 * trial.cfgs.train.seed + s for s in study.ae_seeds)  # distinct per CLR seed
    for epochs in trial.evaluations_left():
        embed, curves, checkpoint = trial.embedding(data, epochs)
        t0 = time.perf_counter()
        ev = evaluate_splits(embed, data, trial.cfgs.score, ae_seeds, study.eps_s)
        metrics = trial.advance(epochs, time.perf_counter() - t0)
        trial.log_and_report(ev, {**ev.flat_metrics(), **metrics}, curves, checkpoint, parent)
    trial.monitor.count(TRIALS_COMPLETED)


# A trial's own process (Tune's function trainable: it starts Ray Train, then scores) reserves memory but
# no CPU, so that the Train workers' CPUs add up to the cluster's: with any CPU here, two 1-CPU trials on
# a 2-CPU machine would need 2.02 CPUs and train one at a time. It also takes the scaling's custom
# resources, so that the trial runs on the nodes its Train workers need.
TRIAL_DRIVER_RESOURCES = {"cpu": 0, "memory": 512 * 2**20}


def concurrent_trials(scaling: ScalingSpec, cluster: dict[str, float]) -> int:
    """How many trials' Train worker groups fit on the cluster at once (at least one)."""
    fits = cluster.get("CPU", 1) // (scaling.num_workers * scaling.cpus_per_worker)
    if scaling.use_gpu:
        fits = min(fits, cluster.get("GPU", 0) // scaling.num_workers)
    return max(1, int(fits))


def run_study(study: StudyConfig, address: str | None = None):
    """Run (or resume) the study; returns the Tune ResultGrid."""
    import ray
    from ray import tune

    # trials run in their own working directories: make every path absolute first
    storage = Storage.at(study.storage_path)
    study = dataclasses.replace(study, tracking_uri=absolute_uri(study.tracking_uri), storage_path=storage.uri,
                                data=dataclasses.replace(study.data, data_dir=str(Path(study.data.data_dir).resolve())))
    check_tracking(study.tracking_uri)
    storage.check_writable()
    trials = [resolve(study, sample) for sample in study.corner_samples()]
    for cfgs in trials:  # data files exist, have the layout, enough events and the labels supcon needs
        check_data(cfgs.data, labels=labels_needed(cfgs.method))
    datas = [cfgs.data for cfgs in trials]
    connect(address)
    check_cluster(storage, study.tracking_uri, sorted({f for data in datas for f in data_files(data)}))
    exp_id = experiment_id(study.tracking_uri, study.name, storage.uri_of("mlartifacts"))
    parent_record = f"{study.name}.mlflow_parent"
    fs, experiment_path = storage.filesystem, storage.path(study.name)
    restoring = tune.Tuner.can_restore(experiment_path, storage_filesystem=fs)
    tags = code_tags()
    if restoring and (recorded := storage.read_text(parent_record)):
        parent_run_id = recorded.strip()
    else:
        with tempfile.TemporaryDirectory() as tmp:
            config = dump(study, Path(tmp) / STUDY_CONFIG_FILE)  # the study as `--config` takes it back
            parent_run_id = start_parent_run(study.tracking_uri, exp_id, study.name, study, tags, [config])
        storage.write_text(parent_run_id, parent_record)
    concurrent = concurrent_trials(study.scaling, ray.cluster_resources())
    parent = _Parent(exp_id, parent_run_id, tags)
    trainable = tune.with_resources(tune.with_parameters(_trial, study=study, parent=parent),
                                    {**TRIAL_DRIVER_RESOURCES, **study.scaling.custom_resources})
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
                                        search_alg=search_alg, scheduler=scheduler, metric=study.metric, mode="max"),
            run_config=tune.RunConfig(name=study.name, storage_path=storage.path(), storage_filesystem=fs,
                                      failure_config=tune.FailureConfig(max_failures=study.max_failures)),
        )
    return tuner.fit()
