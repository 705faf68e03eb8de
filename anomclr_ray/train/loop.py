"""The training: the views a step encodes, the contrastive step, the epoch, and the loop that the plain
path (`pretrain`) and every Ray Train worker (`distributed`) run."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from ..events.preprocess import Preprocessor
from ..method import augment
from ..method.losses import ANOMALY, LOSSES, TWO_VIEWS, Shard, contrastive_loss
from ..method.model import ModelConfig, build_encoder
from .config import TrainConfig, check_batch_size


DROPOUT_SEED_OFFSET = 7_919_000_003  # the global generator's seeds (dropout), apart from the batches' and views'


def contrastive_step(model: torch.nn.Module, pre: Preprocessor, views: list[torch.Tensor], cfg: TrainConfig,
                     shard: Shard = Shard(), labels: torch.Tensor | None = None) -> torch.Tensor:
    """The loss of one step: `views` = [events, physical views(, anomaly views)] (or, for the two-view
    losses, two augmented views), each (B, 19, 4) this worker's share, encoded in one forward pass
    (under bf16 autocast if `cfg.precision` says so; the loss in float32); `shard` places them in the
    global batch; `labels` (B,) are their process labels (supcon)."""
    x = pre(torch.cat(views))
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
        h = model(x)
    h = h.float().split(len(views[0]))
    return contrastive_loss(cfg.loss, h[0], h[1], h[2] if len(h) > 2 else None, cfg.temperature, shard, labels,
                            cfg.vicreg_weights)


def physical_view(x: torch.Tensor, cfg: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    """The physical augmentation, then (when asked for) object masking and Gaussian pT resampling."""
    view = augment.physical(x, gen, cfg.augment_strength)
    if cfg.mask_probability:
        view = augment.mask_objects(view, cfg.mask_probability, gen)
    if cfg.pt_resampling:
        view = augment.resample_pt(view, cfg.pt_resampling, gen)
    return view


def make_views(x: torch.Tensor, cfg: TrainConfig, gen: torch.Generator) -> list[torch.Tensor]:
    """The views a step encodes: [events, physical views(, anomaly views for AnomCLR/AnomCLR+)], as the
    published AnomalyCLR code; for SimCLR, SupCon and VICReg two physical views drawn independently,
    as SimCLR compares two augmentations of each event."""
    kind = LOSSES[cfg.loss].views
    if kind == TWO_VIEWS:
        return [physical_view(x, cfg, gen), physical_view(x, cfg, gen)]
    views = [x, physical_view(x, cfg, gen)]
    return views + ([augment.anomalous(x, cfg.mix, gen)] if kind == ANOMALY else [])


def train_epoch(model: torch.nn.Module, opt: torch.optim.Optimizer, data: torch.Tensor, pre: Preprocessor,
                cfg: TrainConfig, epoch: int, rank: int = 0, world: int = 1,
                all_reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
                on_batch: Callable[[int, torch.Tensor], None] | None = None,
                labels: torch.Tensor | None = None) -> float:
    """One epoch over `data` (N, 19, 4) on its device; returns the mean loss over batches.

    `on_batch(events, loss)` is called after every step with the loss as a 0-dim tensor on the device
    (progress metrics: read it only when needed, every read waits for the device). `labels` (N,) are
    the process labels of `data`, on its device (supcon).

    Batches and augmentations are drawn from generators seeded by (seed, epoch), identical on every
    worker: each global batch of `batch_size` events is augmented whole, on the data's device, and
    worker `rank` of `world` encodes its contiguous share. The loss takes its negatives from the whole
    global batch (head outputs gathered with gradients, `losses.Shard`), so a DDP run has the loss and
    the updates of a single-device run on the same global batch, and a resumed run those of an
    uninterrupted one. Dropout draws from torch's global generator, which no checkpoint carries: it is
    seeded here by (seed, epoch, rank), so that a run resumed at any epoch draws the masks of an
    uninterrupted one too. Nothing is copied between host and device inside a step: the losses are read
    once, at the end of the epoch, which is also where a non-finite one is reported.
    """
    model.train()
    seed = cfg.seed * 100_003 + epoch
    torch.manual_seed(seed + DROPOUT_SEED_OFFSET * (rank + 1))
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed)).to(data.device)
    gen = torch.Generator(device=data.device).manual_seed(seed)
    share, shard = cfg.batch_size // world, Shard(rank, world)
    losses = []
    for idx in order.split(cfg.batch_size):
        if len(idx) < cfg.batch_size:  # equal shares on all workers: drop the last partial batch
            break
        mine = slice(rank * share, (rank + 1) * share)
        views = make_views(data[idx], cfg, gen)
        loss = contrastive_step(model, pre, [v[mine] for v in views], cfg, shard,
                                None if labels is None else labels[idx][mine])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(all_reduce(loss.detach()) if all_reduce else loss.detach())
        if on_batch:
            on_batch(share, losses[-1])
    if not losses:
        return float("nan")
    values = torch.stack(losses).cpu()
    if not (finite := torch.isfinite(values)).all():
        i = int((~finite).nonzero()[0])
        raise FloatingPointError(f"pretrain: loss is {values[i].item()} at epoch {epoch} batch {i}")
    return float(values.mean())


def new_training(model_cfg: ModelConfig, cfg: TrainConfig, device: torch.device,
                 prepare: Callable[[torch.nn.Module], torch.nn.Module] | None = None,
                 ) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """A fresh encoder (initialised from `cfg.seed`) and its Adam optimiser; `prepare` replaces moving
    it to `device` (Ray Train's `prepare_model`: the device and the DDP wrapper)."""
    torch.manual_seed(cfg.seed)
    model = build_encoder(model_cfg)
    model = prepare(model) if prepare else model.to(device)
    return model, torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, betas=(0.9, 0.999))


def train_epochs(model: torch.nn.Module, opt: torch.optim.Optimizer, data: torch.Tensor, pre: Preprocessor,
                 cfg: TrainConfig, history: list[float], labels: torch.Tensor | None = None, rank: int = 0,
                 world: int = 1, all_reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 on_batch: Callable[[int, torch.Tensor], None] | None = None,
                 on_epoch: Callable[[int, list[float], float], None] | None = None) -> list[float]:
    """The training loop: epochs len(history) to cfg.epochs - 1 (a resumed run continues its loss
    history), each `train_epoch` (its arguments as there); after each, `on_epoch(epoch, history,
    seconds)` (a log line, a checkpoint). Returns the whole history."""
    for epoch in range(len(history), cfg.epochs):
        t0 = time.perf_counter()
        history.append(train_epoch(model, opt, data, pre, cfg, epoch, rank, world, all_reduce, on_batch, labels))
        if on_epoch:
            on_epoch(epoch, history, time.perf_counter() - t0)
    return history


def pretrain(events: np.ndarray, pre: Preprocessor, model_cfg: ModelConfig, cfg: TrainConfig,
             device: torch.device, log: Callable[[str], None] | None = print,
             labels: np.ndarray | None = None) -> tuple[torch.nn.Module, list[float]]:
    """Train an encoder on background events (N, 19, 4) (with their process labels (N,) for supcon)
    on one device; returns it and per-epoch losses."""
    check_batch_size(cfg, len(events))
    model, opt = new_training(model_cfg, cfg, device)
    data = torch.as_tensor(events, device=device)

    def report(epoch: int, history: list[float], seconds: float) -> None:
        if log:
            log(f"epoch {epoch + 1}/{cfg.epochs}: loss {history[-1]:.4f}, {len(data) / seconds:.0f} events/s on {device}")

    labels = None if labels is None else torch.as_tensor(labels, device=device)
    return model, train_epochs(model, opt, data, pre, cfg, [], labels, on_epoch=report)
