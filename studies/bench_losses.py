"""Benchmark the contrastive losses: forward + backward time and peak extra memory, D = 128.

    python studies/bench_losses.py [--device auto|cpu|cuda]

CLR (NT-Xent) builds the 2B x 2B similarity matrix; AnomCLR+ needs only the B positive and B anomaly
pairs (O(B) memory and time). Peak memory: the rise of the process's peak RSS over one forward +
backward, measured in a fresh process per point (CPU), or torch's peak allocation (CUDA).
"""

import argparse
import platform
import resource
import time

import torch

from benchutil import in_fresh_process

from anomclr_ray.method.losses import LOSSES, contrastive_loss
from anomclr_ray.train import choose_device

D = 128


def measure(loss: str, batch: int, device_name: str, repeat: int = 10) -> tuple[float, float]:
    """(seconds per forward + backward, peak extra MiB) for one loss and batch size."""
    device = torch.device(device_name)
    g = torch.Generator(device=device).manual_seed(0)
    h, hp, ha = (torch.randn(batch, D, device=device, generator=g, requires_grad=True) for _ in range(3))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    step = lambda: contrastive_loss(loss, h, hp, ha, 0.1).backward()  # noqa: E731
    small = [t[:2].detach().requires_grad_() for t in (h, hp, ha)]
    contrastive_loss(loss, *small, 0.1).backward()  # one-time initialisation, not the loss's memory
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        sync()
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        step()
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        step()
        sync()
        best = min(best, time.perf_counter() - t)
    return best, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = choose_device(args.device)
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, device {device}"
          + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else ""))
    print(f"{'B':>6} {'loss':<13} {'ms':>9} {'peak MiB':>9}")
    for batch in (256, 1024, 4096):
        for loss in LOSSES:
            seconds, mib = in_fresh_process(measure, loss, batch, str(device))
            print(f"{batch:>6} {loss:<13} {seconds * 1e3:9.2f} {mib:9.1f}")


if __name__ == "__main__":
    main()
