"""Pretraining throughput, paper-size encoder (136 dims, 4 heads, 4 layers), AnomCLR+ (3 views), B = 256:
one process (the plain loop) against Ray Train DDP with 1 worker x 2 CPUs and 2 workers x 1 CPU, and
the share of a step spent making the augmented views.

    python studies/bench_pretrain.py [--events 4096] [--device auto|cpu|cuda]

Ray figures are the second epoch's time as measured inside the workers (no start-up cost).
"""

import argparse
import os
import platform
import tempfile
import time

import torch

from anomclr_ray import augment
from anomclr_ray.distributed import ScalingSpec, pretrain_distributed
from anomclr_ray.events.dataset import DataConfig, load_dataset
from anomclr_ray.events.preprocess import Preprocessor
from anomclr_ray.model import Encoder, ModelConfig
from anomclr_ray.pretrain import TrainConfig, choose_device, train_epoch
from anomclr_ray.raycluster import connect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=4096, help="training events per epoch")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = choose_device(args.device)
    data_cfg = DataConfig(n_train=args.events, n_test=1, n_test_signal=1)
    cfg, model_cfg = TrainConfig(batch_size=256, epochs=2), ModelConfig()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
          f"device {device}; {args.events} events per epoch")
    x = torch.as_tensor(load_dataset(data_cfg).train, device=device)
    pre = Preprocessor.fit(x.cpu().numpy())
    model = Encoder(model_cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    train_epoch(model, opt, x, pre, cfg, epoch=0)  # warm-up
    sync()
    t = time.perf_counter()
    train_epoch(model, opt, x, pre, cfg, epoch=1)
    sync()
    plain = args.events / (time.perf_counter() - t)
    g = torch.Generator(device=device).manual_seed(0)
    t = time.perf_counter()
    for batch in x.split(cfg.batch_size):
        augment.physical(batch, g)
        augment.anomalous(batch, cfg.mix, g)
    sync()
    share = (time.perf_counter() - t) / (args.events / plain)
    print(f"one process (plain loop): {plain:8.0f} events/s; making the views takes {share:.1%} of the epoch")

    connect(num_cpus=os.cpu_count())
    rates = {}
    with tempfile.TemporaryDirectory() as storage:
        for workers, cpus in ((1, 2.0), (2, 1.0)):
            scaling = ScalingSpec(num_workers=workers, cpus_per_worker=cpus, use_gpu=device.type == "cuda")
            result = pretrain_distributed(data_cfg, model_cfg, cfg, scaling, storage, f"bench_{workers}")
            rates[workers] = args.events / result.metrics["epoch_seconds"]
            print(f"Ray Train, {workers} worker(s) x {cpus:g} CPU: {rates[workers]:8.0f} events/s")
    print(f"1 -> 2 DDP workers on the same cores: {rates[2] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
