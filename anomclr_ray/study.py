"""Ray Tune studies: each trial = Ray Train pretraining -> representations -> AE -> per-signal metrics.

The search space is data: {"train.mix": {"grid": ["ao", "cs"]}, "train.temperature": {"loguniform":
[0.05, 0.5]}, ...}; keys are `<section>.<field>` of the data / model / train / score configs. Grids run
every combination (ablations); `search="tpe"` samples with Optuna's TPE through Ray Tune. Every config a
study can produce is checked before Ray starts. A study whose directory exists is restored
(`Tuner.restore`) and finishes the trials that had not; MLflow gets one nested run per trial.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .distributed import ScalingSpec, load_result_checkpoint, pretrain_distributed
from .evaluate import evaluate
from .events.dataset import DataConfig, check_data, load_dataset
from .model import ModelConfig
from .pretrain import TrainConfig, check_batch_size, choose_device, represent
from .raycluster import connect
from .report import plot_curves
from .score import ScoreConfig
from .tracking import DEFAULT_TRACKING_URI, absolute_uri, check_tracking, experiment_id, log_trial, start_parent_run

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
    metric: str = "auc/mean"
    eps_s: float = 0.3
    ae_seeds: tuple[int, ...] = (0,)
    tracking_uri: str = DEFAULT_TRACKING_URI
    storage_path: str = "runs"
    max_failures: int = 1

    def __post_init__(self):
        if self.search not in ("grid", "tpe"):
            raise ValueError(f"StudyConfig.search: unknown {self.search!r}, expected 'grid' or 'tpe'")
        if self.num_samples < 1:
            raise ValueError(f"StudyConfig.num_samples must be >= 1, got {self.num_samples}")
        for key, spec in self.search_space.items():
            section, _, name = key.partition(".")
            if section not in SECTIONS or name not in {f.name for f in dataclasses.fields(SECTIONS[section])}:
                raise ValueError(f"search space key {key!r}: expected <section>.<field> with section in "
                                 f"{', '.join(SECTIONS)} and a field of that config")
            if len(spec) != 1 or next(iter(spec)) not in DOMAINS:
                raise ValueError(f"search space {key!r}: expected one of {', '.join(DOMAINS)}, got {spec}")
            if self.search == "tpe" and "grid" in spec:
                raise ValueError(f"search space {key!r}: 'grid' needs search='grid'; use 'choice' with tpe")
        for sample in self.corner_samples():
            resolve(self, sample)  # every reachable config is valid, or we fail here with its message

    def corner_samples(self) -> list[dict[str, Any]]:
        """Every grid/choice value combined with both ends of every range: what configs must accept."""
        values = []
        for spec in self.search_space.values():
            kind, v = next(iter(spec.items()))
            values.append(list(v) if kind in ("grid", "choice") else [v[0], v[1] - 1 if kind == "randint" else v[1]])
        return [dict(zip(self.search_space, combo)) for combo in itertools.product(*values)]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def resolve(study: StudyConfig, sample: dict[str, Any]) -> dict[str, Any]:
    """The per-stage configs of one trial: base configs with the sampled values replaced."""
    updates: dict[str, dict] = {s: {} for s in SECTIONS}
    for key, value in sample.items():
        section, _, name = key.partition(".")
        updates[section][name] = value.item() if isinstance(value, np.generic) else value
    cfgs = {s: dataclasses.replace(getattr(study, s), **updates[s]) for s in SECTIONS}
    cfgs["score"].check_input_dim(cfgs["model"].model_dim)
    check_batch_size(cfgs["train"], cfgs["data"].n_train, study.scaling.num_workers)
    return cfgs


def _param_space(study: StudyConfig) -> dict:
    from ray import tune

    make = {"grid": tune.grid_search, "choice": tune.choice, "uniform": lambda v: tune.uniform(*v),
            "loguniform": lambda v: tune.loguniform(*v), "randint": lambda v: tune.randint(*v)}
    return {key: make[kind](v) for key, spec in study.search_space.items() for kind, v in spec.items()}


def _trial(sample: dict[str, Any], study: StudyConfig, exp_id: str, parent_run_id: str) -> None:
    from ray import tune

    ctx = tune.get_context()
    trial_id, trial_name = ctx.get_trial_id(), ctx.get_trial_name()
    cfgs = resolve(study, sample)
    storage = Path(study.storage_path).resolve() / study.name / "train"
    result = pretrain_distributed(cfgs["data"], cfgs["model"], cfgs["train"], study.scaling, storage, trial_id)
    device = choose_device("auto")
    model, pre, _, history = load_result_checkpoint(result, device)
    data = load_dataset(cfgs["data"])
    rep = lambda x: represent(model, pre, x, device)  # noqa: E731
    ev = evaluate(rep(data.train), rep(data.test_background), {s: rep(x) for s, x in data.test_signals.items()},
                  cfgs["score"], study.ae_seeds, study.eps_s)
    metrics: dict[str, float] = {}
    for sig, m in ev.summary().items():
        for name in ("auc", "si", "eb_at_es"):
            metrics[f"{name}/{sig}"] = m[name]
            metrics[f"{name}_std/{sig}"] = m[f"{name}_std"]
    metrics["auc/mean"] = float(np.mean([metrics[f"auc/{s}"] for s in ev.metrics]))
    metrics["si/mean"] = float(np.mean([metrics[f"si/{s}"] for s in ev.metrics]))
    params = {s: c.to_dict() for s, c in cfgs.items()}
    with tempfile.TemporaryDirectory() as tmp:
        files = plot_curves({cfgs["train"].loss: ev.curves}, tmp)
        (Path(tmp) / "trial_config.json").write_text(json.dumps({**params, "checkpoint": result.checkpoint.path}, indent=2))
        files.append(Path(tmp) / "trial_config.json")
        log_trial(study.tracking_uri, exp_id, parent_run_id, trial_id, trial_name, params,
                  metrics, {"train/loss": history}, files)
    tune.report(metrics)


def run_study(study: StudyConfig, address: str | None = None):
    """Run (or resume) the study; returns the Tune ResultGrid."""
    import ray
    from ray import tune

    # trials run in their own working directories: make every path absolute first
    study = dataclasses.replace(study, tracking_uri=absolute_uri(study.tracking_uri),
                                storage_path=str(Path(study.storage_path).resolve()),
                                data=dataclasses.replace(study.data, data_dir=str(Path(study.data.data_dir).resolve())))
    check_tracking(study.tracking_uri)
    for sample in study.corner_samples():  # data files exist, have the layout and enough events
        check_data(resolve(study, sample)["data"])
    connect(address)
    root = Path(study.storage_path).resolve()
    root.mkdir(parents=True, exist_ok=True)
    exp_id = experiment_id(study.tracking_uri, study.name, root / "mlartifacts")
    parent_file = root / f"{study.name}.mlflow_parent"
    restoring = (root / study.name / "tuner.pkl").exists()
    if restoring and parent_file.exists():
        parent_run_id = parent_file.read_text().strip()
    else:
        parent_run_id = start_parent_run(study.tracking_uri, exp_id, study.name, study.to_dict())
        parent_file.write_text(parent_run_id)
    per_trial = study.scaling.num_workers * study.scaling.cpus_per_worker
    concurrent = max(1, int(ray.cluster_resources().get("CPU", 1) // per_trial))
    trainable = tune.with_resources(tune.with_parameters(_trial, study=study, exp_id=exp_id, parent_run_id=parent_run_id),
                                    {"cpu": 0.01})
    if restoring:
        tuner = tune.Tuner.restore(str(root / study.name), trainable, resume_errored=True)
    else:
        search_alg = None
        if study.search == "tpe":
            from ray.tune.search.optuna import OptunaSearch

            search_alg = OptunaSearch(metric=study.metric, mode="max")
        tuner = tune.Tuner(
            trainable,
            param_space=_param_space(study),
            tune_config=tune.TuneConfig(num_samples=study.num_samples, max_concurrent_trials=concurrent,
                                        search_alg=search_alg, metric=study.metric, mode="max"),
            run_config=tune.RunConfig(name=study.name, storage_path=str(root),
                                      failure_config=tune.FailureConfig(max_failures=study.max_failures)),
        )
    return tuner.fit()
