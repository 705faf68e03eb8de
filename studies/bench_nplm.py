"""Benchmark NPLM's toys: seconds per toy at the default sizes (N_R = 30k, N̄_B = 3k, M = 1000 and 500),
one thread, for inputs of several dimensions, and the wall time of the same toys as Ray tasks on 1 and
2 workers.

    python studies/bench_nplm.py [--dims 4 16 64] [--toys 8] [--device auto|cpu|cuda]

Inputs are standard-normal pools of the given dimension (a toy's cost depends on N, M and the dimension,
not on what the numbers mean) plus the shipped data's raw preprocessed events (AE-Raw's inputs).
"""

import argparse
import os
import platform
import time

import torch

from anomclr_ray.events.dataset import REPRODUCTION_SPLIT, DataConfig, load_dataset
from anomclr_ray.events.preprocess import Preprocessor
from anomclr_ray.method.evaluate import raw_inputs
from anomclr_ray.nplm import NPLMConfig, Toy, make_pools, plan, run_toy, run_toys
from anomclr_ray.train import choose_device
from anomclr_ray.infra.raycluster import connect

POOL = REPRODUCTION_SPLIT["n_test"]  # the reproduction size's test background


def seconds_per_toy(pools, cfg: NPLMConfig, toys: int) -> float:
    run_toy(pools, cfg, Toy(None, 0.0, 10_000))  # warm-up
    t0 = time.perf_counter()
    for i in range(toys):
        run_toy(pools, cfg, Toy(None, 0.0, i))
    if pools.background.is_cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / toys


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dims", type=int, nargs="+", default=[4, 16, 64])
    p.add_argument("--toys", type=int, default=8, help="toys per point")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    device = choose_device(args.device)
    torch.set_num_threads(1)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, device {device}, "
          f"1 torch thread in process")
    data = load_dataset(DataConfig(n_train=20_000, n_test=POOL, n_test_signal=1, signals=()))
    inputs = {f"normal, {d} dims": torch.randn(POOL, d, generator=torch.Generator().manual_seed(d)) for d in args.dims}
    inputs["raw inputs (AE-Raw)"] = raw_inputs(Preprocessor.fit(data.train), data.test_background)
    print(f"{'input':<24}{'dims used':>10}{'M':>6}{'s / toy':>10}")
    pools_of = {}
    for name, x in inputs.items():
        for m in (1000, 500):
            cfg = NPLMConfig(centres=m)
            pools = pools_of.setdefault(name, make_pools(x, {}, cfg, device))
            print(f"{name:<24}{pools.background.shape[1]:>10}{m:>6}{seconds_per_toy(pools, cfg, args.toys):>10.2f}", flush=True)

    cfg = NPLMConfig(centres=500, null_toys=4 * args.toys)
    pools = pools_of[f"normal, {args.dims[0]} dims"]
    toys = plan(cfg, [])
    connect(None, num_cpus=2)
    run_toys(pools, cfg, toys[:2], workers=2)  # start both worker processes before timing
    walls: dict[int, float] = {}
    for workers in (1, 2, 1, 2):  # alternated, the faster of two runs each: no order effects
        t0 = time.perf_counter()
        run_toys(pools, cfg, toys, workers=workers)
        walls[workers] = min(walls.get(workers, float("inf")), time.perf_counter() - t0)
    for workers, wall in walls.items():
        print(f"Ray, {workers} worker{'s' * (workers > 1)}: {len(toys)} toys ({args.dims[0]} dims, M = 500) in "
              f"{wall:.1f} s (the faster of two runs)", flush=True)
    print(f"speed-up 1 -> 2 workers: {walls[1] / walls[2]:.2f}x")


if __name__ == "__main__":
    main()
