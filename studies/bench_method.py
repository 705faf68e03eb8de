"""Benchmark the method core: augmentations and single-device training throughput (CPU; CUDA too).

    python studies/bench_method.py [--device auto|cpu|cuda]

Targets (issue 3): every augmentation >= 500k events/s at B = 100k on CPU and >= 25x a per-event
Python loop over the same work. Losses: studies/bench_losses.py; DDP: studies/bench_pretrain.py.
"""

import argparse
import math
import platform
import time

import numpy as np
import torch

from anomclr_ray.method import augment as A
from anomclr_ray.events import layout as L
from anomclr_ray.events.dataset import DataConfig, load_dataset
from anomclr_ray.events.preprocess import Preprocessor
from anomclr_ray.method.model import Encoder, ModelConfig
from anomclr_ray.train import TrainConfig, choose_device, train_epoch


def timed(fn, repeat=5, sync=lambda: None):
    fn()
    sync()
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t)
    return best


def physical_per_event(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The physical augmentation written as the per-event loop seen in research code (baseline)."""
    out = np.zeros_like(x)
    for n in range(len(x)):
        ev = x[n].copy()
        angle = rng.uniform(-np.pi, np.pi)
        for i in range(L.N_SLOTS):
            if ev[i, L.CLASS] == 0:
                continue
            ev[i, L.PHI] = (ev[i, L.PHI] + angle + np.pi) % (2 * np.pi) - np.pi
            if i > 0:
                sigma = 0.028 / (1 + math.exp(min((ev[i, L.PT] - 25) / 0.1, 50.0)))
                ev[i, L.ETA] += sigma * rng.normal()
                ev[i, L.PHI] += sigma * rng.normal()
            if ev[i, L.CLASS] == L.JET_ID:
                ev[i, L.PT] = max(ev[i, L.PT] + math.sqrt(0.052 * ev[i, L.PT] ** 2 + 1.502 * ev[i, L.PT]) * rng.normal(), 0)
        for t in (L.ELECTRON, L.MUON, L.JET):
            objs = [o for o in ev[t.slots] if o[L.CLASS] > 0 and o[L.PT] >= t.pt_min and abs(o[L.ETA]) <= t.eta_max]
            objs.sort(key=lambda o: -o[L.PT])
            block = np.zeros((t.n_slots, 4), np.float32)
            if objs:
                block[: len(objs)] = np.array(objs)
            ev[t.slots] = block
        out[n] = ev
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = choose_device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, device {device}"
          + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else ""))
    data = load_dataset(DataConfig(n_train=99_999, n_test=1, n_test_signal=1))
    x = torch.as_tensor(data.train, device=device)
    g = torch.Generator(device=device).manual_seed(0)

    print(f"augmentations at B = {len(x)} ({device}):")
    loop_n = 2000
    loop_rate = loop_n / timed(lambda: physical_per_event(data.train[:loop_n], np.random.default_rng(0)), repeat=1)
    for name, fn in [("rotate_phi", A.rotate_phi), ("smear_eta_phi", A.smear_eta_phi), ("smear_jet_pt", A.smear_jet_pt),
                     ("physical", A.physical), ("add_objects", A.add_objects), ("collinear_split", A.collinear_split),
                     ("shift", A.shift), ("anomalous(all)", lambda x, generator: A.anomalous(x, "all", generator))]:
        rate = len(x) / timed(lambda: fn(x, generator=g), sync=sync)
        print(f"  {name:<16} {rate / 1e3:9.0f} k events/s  ({rate / loop_rate:5.0f}x the per-event loop)")
    print(f"  per-event Python loop (physical, numpy): {loop_rate / 1e3:.1f} k events/s")

    cfg = TrainConfig(batch_size=256)
    pre = Preprocessor.fit(data.train)
    model = Encoder(ModelConfig()).to(device)  # paper-size: 136 dims, 4 layers, 4 heads
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    batches = x[: 4 * cfg.batch_size]
    t = timed(lambda: train_epoch(model, opt, batches, pre, cfg, epoch=0), repeat=3, sync=sync)
    print(f"training, paper-size encoder, AnomCLR+ (3 views), B = {cfg.batch_size}: {len(batches) / t:.0f} events/s ({device})")


if __name__ == "__main__":
    main()
