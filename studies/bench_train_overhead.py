"""What one Ray Train run costs besides its training: a trial starts one per evaluation (`pretrain_distributed`).

    python studies/bench_train_overhead.py [--runs 3]

Tiny runs (300 events, one epoch of a small encoder), one worker, on a local Ray: each run's wall time
from `fit()` to its return against the epoch's own seconds (measured inside the worker), with Ray
Train's controller polling its workers every 2 s (Ray's default) and every `POLL_S` (the platform's).
The first run of each setting also starts Train's state actor; the mean is over the others.
"""

import argparse
import os
import platform
import statistics
import tempfile
import time

from anomclr_ray.events.dataset import DataConfig
from anomclr_ray.infra.raycluster import connect
from anomclr_ray.method.model import ModelConfig
from anomclr_ray.train import TrainConfig
from anomclr_ray.train.distributed import POLL_ENV, POLL_S, ScalingSpec, pretrain_distributed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="runs per setting (>= 2)")
    args = p.parse_args()
    connect(num_cpus=2)
    data = DataConfig(n_train=300, n_test=1, n_test_signal=1)
    model = ModelConfig(model_dim=16, heads=2, layers=1, feedforward_dim=16, output_dim=16)
    cfg = TrainConfig(epochs=1, batch_size=100)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; one worker")
    for poll in ("2", POLL_S):
        os.environ[POLL_ENV] = poll  # fit() hands it to the controller it starts
        walls, overheads = [], []
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.runs):
                t0 = time.perf_counter()
                result = pretrain_distributed(data, model, cfg, ScalingSpec(), tmp, f"run{i}")
                walls.append(time.perf_counter() - t0)
                overheads.append(walls[-1] - result.metrics["epoch_seconds"])
        print(f"poll every {poll} s: run wall {', '.join(f'{w:.1f}' for w in walls)} s; besides training, "
              f"mean of runs 2-{args.runs}: {statistics.mean(overheads[1:]):.1f} s")


if __name__ == "__main__":
    main()
