"""Distributed contrastive pretraining with Ray Train (TorchTrainer, DDP; gloo on CPU, nccl on GPU).

Each worker reads the training background from the data directory (a file mount on a cluster),
runs `pretrain.train_epoch` on its share of every global batch, and rank 0 writes a checkpoint (model,
optimizer, epoch, loss history, configs, preprocessing scales) every `checkpoint_every` epochs and at
the end. Ray 2.60 (Train V2) keeps only metrics attached to checkpoints, so each checkpoint carries
the loss history: `Result.metrics` of the last one holds the whole curve. A run restarted under the
same storage path and name resumes from its latest checkpoint.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .configs import from_plain, to_plain
from .events.dataset import DataConfig, load_dataset
from .events.preprocess import Preprocessor
from .model import ModelConfig, build_encoder
from .monitoring import TrainMonitor
from .pretrain import TrainConfig, check_batch_size, read_checkpoint, save_checkpoint, train_epoch
from .storage import Storage

CHECKPOINT_FILE = "checkpoint.pt"


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

    def __post_init__(self):
        if self.num_workers < 1 or self.checkpoint_every < 1 or self.cpus_per_worker <= 0:
            raise ValueError(f"ScalingSpec: num_workers, checkpoint_every >= 1 and cpus_per_worker > 0 needed, got {self}")


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

    torch.manual_seed(cfg.seed)
    model = ray.train.torch.prepare_model(build_encoder(model_cfg))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, betas=(0.9, 0.999))
    start, history = 0, []
    ck = ray.train.get_checkpoint()
    if ck:
        with ck.as_directory() as d:
            state = torch.load(Path(d) / CHECKPOINT_FILE, map_location=device, weights_only=True)
        _unwrap(model).load_state_dict(state["state_dict"])
        opt.load_state_dict(state["optimizer"])
        start, history = state["epoch"] + 1, state["history"]

    def mean_over_workers(t: torch.Tensor) -> torch.Tensor:
        if world > 1:
            t = t.clone()
            dist.all_reduce(t)
            t /= world
        return t

    monitor = TrainMonitor(config["run"])
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        history.append(train_epoch(model, opt, data, pre, cfg, epoch, rank, world, mean_over_workers, monitor.batch,
                                   labels))
        seconds = time.perf_counter() - t0
        monitor.epoch_done(epoch, history[-1])
        last = epoch == cfg.epochs - 1
        if not (last or (epoch + 1) % config["checkpoint_every"] == 0):
            continue
        metrics = {"epoch": epoch, "loss": history[-1], "loss_history": list(history), "epoch_seconds": seconds}
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = None
            if rank == 0:
                save_checkpoint(Path(tmp) / CHECKPOINT_FILE, _unwrap(model), pre, cfg, history,
                                optimizer=opt.state_dict(), epoch=epoch)
                checkpoint = ray.train.Checkpoint.from_directory(tmp)
            ray.train.report(metrics, checkpoint=checkpoint)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def pretrain_distributed(data_cfg: DataConfig, model_cfg: ModelConfig, cfg: TrainConfig, scaling: ScalingSpec,
                         storage_path: str | Path, name: str, pre: Preprocessor | None = None):
    """Fit with Ray Train; returns the `ray.train.Result` (last checkpoint, metrics with the loss history).

    `storage_path` is a path or an object-store URI (see `storage.Storage`). `pre` defaults to a
    Preprocessor fitted on the training background here, on the driver.
    """
    from ray.train import CheckpointConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    check_batch_size(cfg, data_cfg.n_train, scaling.num_workers)
    pre = pre or Preprocessor.fit(load_dataset(data_cfg).train)
    storage = Storage.at(storage_path)
    run = RunConfig(name=name, storage_path=storage.path(), storage_filesystem=storage.filesystem,
                    checkpoint_config=CheckpointConfig(num_to_keep=2))
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
