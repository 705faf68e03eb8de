"""DDP with global negatives: on a real 2-process gloo group, every loss and its gradient equal those of
one process on the same global batch (`train.contrastive_step` with `losses.Shard`), for all six losses."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from anomclr_ray.method import augment
from anomclr_ray.events.preprocess import Preprocessor
from anomclr_ray.method.losses import ANOMALY, LOSSES, Shard
from anomclr_ray.method.model import Encoder, ModelConfig
from anomclr_ray.train import TrainConfig, contrastive_step

from conftest import free_port

MODEL = ModelConfig(model_dim=16, heads=2, layers=1, feedforward_dim=16, output_dim=8, dropout=0.0)
BATCH = 16
LABELS = torch.arange(BATCH) % 3  # process labels for supcon: several positives per anchor


def _views(events: torch.Tensor) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(5)
    return [events, augment.physical(events, gen), augment.anomalous(events, "all", gen)]


def _loss_and_grad(model, pre, views, loss, shard=Shard(), labels=LABELS) -> tuple[float, torch.Tensor]:
    model.zero_grad()
    cfg = TrainConfig(loss=loss, temperature=0.2)
    value = contrastive_step(model, pre, views if LOSSES[loss].views == ANOMALY else views[:2], cfg, shard, labels)
    value.backward()
    return float(value.detach()), torch.cat([p.grad.flatten() for p in model.parameters()])


def _worker(rank: int, world: int, port: int, events: torch.Tensor, pre: Preprocessor, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(Encoder(MODEL))
    share = BATCH // world
    mine = [v[rank * share:(rank + 1) * share] for v in _views(events)]
    results = {}
    for loss in LOSSES:
        value, grad = _loss_and_grad(model, pre, mine, loss, Shard(rank, world), LABELS[rank * share:(rank + 1) * share])
        mean = torch.tensor(value)
        dist.all_reduce(mean)
        results[loss] = (float(mean) / world, grad)
    if rank == 0:
        torch.save(results, out)
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_workers_give_the_single_process_loss_and_gradient(background_sample, tmp_path):
    events = torch.as_tensor(background_sample[:BATCH])
    pre = Preprocessor.fit(background_sample)
    out = str(tmp_path / "ddp.pt")
    mp.spawn(_worker, args=(2, free_port(), events, pre, out), nprocs=2, join=True)
    ddp = torch.load(out, weights_only=True)
    torch.manual_seed(0)
    model = Encoder(MODEL)
    for loss in LOSSES:
        value, grad = _loss_and_grad(model, pre, _views(events), loss)
        assert ddp[loss][0] == pytest.approx(value, rel=1e-5), loss
        torch.testing.assert_close(ddp[loss][1], grad, rtol=1e-4, atol=1e-6, msg=loss)


def test_local_negatives_would_differ(background_sample):
    """What the gather fixes: each worker's loss with only its own half as negatives is not the global loss."""
    events = torch.as_tensor(background_sample[:BATCH])
    pre = Preprocessor.fit(background_sample)
    torch.manual_seed(0)
    model = Encoder(MODEL)
    views = _views(events)
    whole, _ = _loss_and_grad(model, pre, views, "clr")
    halves = [_loss_and_grad(model, pre, [v[k * 8:(k + 1) * 8] for v in views], "clr")[0] for k in range(2)]
    assert abs(sum(halves) / 2 - whole) > 1e-3
