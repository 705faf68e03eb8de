"""Pretraining throughput, paper-size encoder (136 dims, 4 heads, 4 layers), AnomCLR+ (3 views):

1. the encoder over all 19 slots (padded) against the one that computes on the filled slots only
   (packed, the default), at B = 256 and 1024: events/s and peak memory, each point in a fresh process;
2. with --ray: one process (the plain loop) against Ray Train DDP with 1 worker x 2 CPUs and 2 workers
   x 1 CPU, and the share of a step spent making the augmented views.

    python studies/bench_pretrain.py [--steps 4] [--batches 256 1024] [--precisions float32 bf16]
                                     [--device auto|cpu|cuda] [--ray]

Peak memory: the rise of the process's peak RSS over its first training step (CPU), or torch's peak
allocation (CUDA). Ray figures are the second epoch's time as measured inside the workers.
"""

import argparse
import dataclasses
import os
import platform
import resource
import tempfile
import threading
import time

import torch

from benchutil import in_fresh_process

from anomclr_ray.method import augment
from anomclr_ray.train.distributed import ScalingSpec, pretrain_distributed
from anomclr_ray.events.dataset import DataConfig, load_dataset
from anomclr_ray.events.preprocess import Preprocessor
from anomclr_ray.method.model import Encoder, ModelConfig
from anomclr_ray.train import TrainConfig, choose_device, train_epoch

PAPER = ModelConfig()  # the published code's defaults (docs/method.md): 136 dims, 4 heads, 4 layers


def measure(packed: bool, batch: int, steps: int, device_name: str, precision: str = "float32"
            ) -> tuple[float, float, float | None]:
    """(events/s over `steps` training steps after one warm-up step, peak MiB of the first step, mean GPU
    utilisation in % over the timed steps on CUDA)."""
    device = torch.device(device_name)
    cfg = TrainConfig(batch_size=batch, epochs=2, precision=precision)
    x = torch.as_tensor(load_dataset(DataConfig(n_train=batch * steps, n_test=1, n_test_signal=1)).train, device=device)
    pre = Preprocessor.fit(x.cpu().numpy())
    torch.manual_seed(0)
    model = Encoder(dataclasses.replace(PAPER, packed=packed)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    train_epoch(model, opt, x[:batch], pre, cfg, epoch=0)  # warm-up: one step
    sync()
    if device.type == "cuda":
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    samples, stop = [], threading.Event()
    if device.type == "cuda":  # sample the GPU's utilisation while it trains
        def watch():
            while not stop.wait(0.05):
                samples.append(torch.cuda.utilization(device))
        threading.Thread(target=watch, daemon=True).start()
    t = time.perf_counter()
    train_epoch(model, opt, x, pre, cfg, epoch=1)
    sync()
    seconds = time.perf_counter() - t
    stop.set()
    return len(x) / seconds, peak, (sum(samples) / len(samples) if samples else None)


def encoders(steps: int, device: torch.device, batches: list[int], precisions: list[str]) -> None:
    print(f"{'B':>6} {'encoder':<8} {'precision':<9} {'events/s':>9} {'peak MiB':>9} {'GPU util':>9}")
    for batch in batches:
        for precision in precisions:
            rates = {}
            for packed in (False, True):
                rates[packed], mib, util = in_fresh_process(measure, packed, batch, steps, str(device), precision)
                print(f"{batch:>6} {'packed' if packed else 'padded':<8} {precision:<9} {rates[packed]:9.0f} {mib:9.1f}"
                      f" {'' if util is None else f'{util:8.0f}%'}")
            print(f"{batch:>6} packed / padded, {precision}: {rates[True] / rates[False]:.2f}x events/s")


def ray_train(events: int, device: torch.device) -> None:
    from anomclr_ray.infra.raycluster import connect

    data_cfg = DataConfig(n_train=events, n_test=1, n_test_signal=1)
    cfg = TrainConfig(batch_size=256, epochs=2)
    x = torch.as_tensor(load_dataset(data_cfg).train, device=device)
    pre = Preprocessor.fit(x.cpu().numpy())
    model = Encoder(PAPER).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    train_epoch(model, opt, x, pre, cfg, epoch=0)  # warm-up
    sync()
    t = time.perf_counter()
    train_epoch(model, opt, x, pre, cfg, epoch=1)
    sync()
    plain = events / (time.perf_counter() - t)
    g = torch.Generator(device=device).manual_seed(0)
    t = time.perf_counter()
    for batch in x.split(cfg.batch_size):
        augment.physical(batch, g)
        augment.anomalous(batch, cfg.mix, g)
    sync()
    share = (time.perf_counter() - t) / (events / plain)
    print(f"one process (plain loop), B = 256: {plain:8.0f} events/s; making the views takes {share:.1%} of the epoch")
    connect(num_cpus=os.cpu_count())
    rates = {}
    with tempfile.TemporaryDirectory() as storage:
        for workers, cpus in ((1, 2.0), (2, 1.0)):
            scaling = ScalingSpec(num_workers=workers, cpus_per_worker=cpus, use_gpu=device.type == "cuda")
            result = pretrain_distributed(data_cfg, PAPER, cfg, scaling, storage, f"bench_{workers}")
            rates[workers] = events / result.metrics["epoch_seconds"]
            print(f"Ray Train, {workers} worker(s) x {cpus:g} CPU: {rates[workers]:8.0f} events/s")
    print(f"1 -> 2 DDP workers on the same cores: {rates[2] / rates[1]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4, help="timed training steps per point")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batches", type=int, nargs="+", default=[256, 1024], help="global batch sizes")
    parser.add_argument("--precisions", nargs="+", default=["float32"], choices=["float32", "bf16"])
    parser.add_argument("--ray", action="store_true", help="also the plain loop against Ray Train DDP")
    parser.add_argument("--events", type=int, default=4096, help="events per epoch of the --ray part")
    args = parser.parse_args()
    device = choose_device(args.device)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
          f"device {device}" + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else ""))
    encoders(args.steps, device, args.batches, args.precisions)
    if args.ray:
        ray_train(args.events, device)


if __name__ == "__main__":
    main()
