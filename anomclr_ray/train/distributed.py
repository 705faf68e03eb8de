"""Distributed contrastive pretraining with Ray Train (TorchTrainer, DDP; gloo on CPU, nccl on GPU).

Each worker reads the training background from the data directory (a file mount on a cluster),
runs the training loop of `pretrain` (`new_training`, `train_epochs`) on its share of every global
batch, and rank 0 writes a checkpoint (model,
optimizer, epoch, loss history, configs, preprocessing scales) every `checkpoint_every` epochs and at
the end. Ray 2.60 (Train V2) keeps only metrics attached to checkpoints, so each checkpoint carries
the loss history: `Result.metrics` of the last one holds the whole curve. A run restarted under the
same storage path and name resumes from its latest checkpoint.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..configs import from_plain, to_plain
from ..errors import ConfigError
from ..events.dataset import DataConfig, load_dataset
from ..events.preprocess import Preprocessor
from ..infra.monitoring import TrainMonitor
from ..infra.storage import Storage
from ..method.model import ModelConfig
from .checkpoint import read_checkpoint, read_state, save_checkpoint
from .config import TrainConfig, check_batch_size
from .loop import new_training, train_epochs

CHECKPOINT_FILE = "checkpoint.pt"
# Ray Train's controller advances a run (workers started, finished) only at its health checks, every 2 s by
# default, and a trial starts one Train run per evaluation: a tiny run cost 18.5 s besides its training with
# 2 s, 15.5 s with 0.25 s (studies/bench_train_overhead.py, docs/reliability.md). A poll is one small actor
# call per worker; a value the user set wins.
POLL_ENV, POLL_S = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25"


@dataclass(frozen=True)
class ScalingSpec:
    """How many Ray Train workers, and whether each gets a GPU."""

    num_workers: int = 1
    use_gpu: bool = False
    cpus_per_worker: float = 1.0
    checkpoint_every: int = 1
    # resources each Train worker (and a study's trial process) also needs, e.g. {"gpu_node": 1}: they
    # place trials on the nodes that offer them (`ray start --resources`, `resources:` in cluster YAMLs)
    custom_resources: dict[str, float] = field(default_factory=dict)
    # Ray Train's own failure policy (its FailureConfig.max_failures, 0 in Ray): how often a run's workers
    # are restarted from its latest checkpoint after a worker or its node is lost, inside the trial, before
    # the trial itself fails (then the study's `max_failures`, Tune's, retries the whole trial)
    worker_restarts: int = 2

    def __post_init__(self):
        if self.num_workers < 1 or self.checkpoint_every < 1 or self.cpus_per_worker <= 0 or self.worker_restarts < 0:
            raise ConfigError(f"ScalingSpec: num_workers, checkpoint_every >= 1, cpus_per_worker > 0 and "
                              f"worker_restarts >= 0 needed, got {self}")


def _worker_loop(config: dict) -> None:
    import ray.train
    import ray.train.torch
    import torch.distributed as dist

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = ray.train.torch.get_device()
    data_cfg, model_cfg = from_plain(DataConfig, config["data"]), from_plain(ModelConfig, config["model"])
    cfg, pre = from_plain(TrainConfig, config["train"]), from_plain(Preprocessor, config["preprocessor"])
    dataset = load_dataset(data_cfg)
    data = torch.as_tensor(dataset.train, device=device)
    labels = None if dataset.train_labels is None else torch.as_tensor(dataset.train_labels, device=device)

    model, opt = new_training(model_cfg, cfg, device, prepare=ray.train.torch.prepare_model)
    history: list[float] = []
    if ck := ray.train.get_checkpoint():  # resume: the weights, Adam's state and the loss history so far
        with ck.as_directory() as d:
            state = read_state(Path(d) / CHECKPOINT_FILE, device)
        _unwrap(model).load_state_dict(state["state_dict"])
        opt.load_state_dict(state["optimizer"])
        history = state["history"]

    def mean_over_workers(t: torch.Tensor) -> torch.Tensor:
        if world > 1:
            t = t.clone()
            dist.all_reduce(t)
            t /= world
        return t

    monitor = TrainMonitor(config["run"])

    def checkpoint_and_report(epoch: int, history: list[float], seconds: float) -> None:
        monitor.epoch_done(epoch, history[-1])
        if not (epoch == cfg.epochs - 1 or (epoch + 1) % config["checkpoint_every"] == 0):
            return
        metrics = {"epoch": epoch, "loss": history[-1], "loss_history": list(history), "epoch_seconds": seconds}
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = None
            if rank == 0:
                save_checkpoint(Path(tmp) / CHECKPOINT_FILE, _unwrap(model), pre, cfg, history,
                                optimizer=opt.state_dict(), epoch=epoch)
                checkpoint = ray.train.Checkpoint.from_directory(tmp)
            ray.train.report(metrics, checkpoint=checkpoint)

    train_epochs(model, opt, data, pre, cfg, history, labels, rank, world, mean_over_workers, monitor.batch,
                 checkpoint_and_report)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def pretrain_distributed(data_cfg: DataConfig, model_cfg: ModelConfig, cfg: TrainConfig, scaling: ScalingSpec,
                         storage_path: str | Path, name: str, pre: Preprocessor | None = None):
    """Fit with Ray Train; returns the `ray.train.Result` (last checkpoint, metrics with the loss history).

    `storage_path` is a path or an object-store URI (see `storage.Storage`). `pre` defaults to a
    Preprocessor fitted on the training background here, on the driver.
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    check_batch_size(cfg, data_cfg.n_train, scaling.num_workers)
    os.environ.setdefault(POLL_ENV, POLL_S)  # read by fit(), which hands it to the controller it starts
    pre = pre or Preprocessor.fit(load_dataset(data_cfg).train)
    storage = Storage.at(storage_path)
    run = RunConfig(name=name, storage_path=storage.path(), storage_filesystem=storage.filesystem,
                    checkpoint_config=CheckpointConfig(num_to_keep=2),
                    failure_config=FailureConfig(max_failures=scaling.worker_restarts))
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={"data": to_plain(data_cfg), "model": to_plain(model_cfg), "train": to_plain(cfg),
                           "preprocessor": to_plain(pre), "checkpoint_every": scaling.checkpoint_every,
                           "run": name},
        torch_config=TorchConfig(backend="nccl" if scaling.use_gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=scaling.num_workers, use_gpu=scaling.use_gpu,
                                     resources_per_worker={"CPU": scaling.cpus_per_worker, **scaling.custom_resources}),
        run_config=run,  # Train V2 resumes from the checkpoints under (storage_path, name), if any
    )
    return trainer.fit()


def load_result_checkpoint(result, device: torch.device) -> tuple[torch.nn.Module, Preprocessor, TrainConfig, list[float]]:
    """Model, preprocessing, train config and loss history from a Ray Train result's last checkpoint."""
    with result.checkpoint.as_directory() as d:
        model, pre, cfg, state = read_checkpoint(Path(d) / CHECKPOINT_FILE, device)
    return model, pre, cfg, state["history"]
