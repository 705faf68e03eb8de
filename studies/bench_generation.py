"""Benchmark event generation: accepted events/s/core per process, the cocktail rate, 1 -> 2 workers.

    python studies/bench_generation.py [--quick]

Targets (issue 2): >= 80 accepted W events/s/core, >= 20 accepted cocktail events/s/core,
>= 1.8x from 1 to 2 Ray workers. Rates include Pythia initialisation, as in a real chunk.
"""

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import ray

from anomclr_ray.events.generation.processes import BACKGROUND_FRACTIONS, PROCESSES
from anomclr_ray.events.generation.pythia_chunk import generate_chunk
from anomclr_ray.events.generation.runner import GenerationConfig, run_chunks


def per_process_rates(n: dict[str, int]) -> dict[str, float]:
    rates = {}
    for proc, n_accept in n.items():
        res = generate_chunk(PROCESSES[proc], seed=123, chunk=0, n_accept=n_accept)
        rates[proc] = n_accept / res.seconds
        accepted_pb = res.sigma_pb * PROCESSES[proc].sigma_scale * n_accept / res.n_generated
        print(f"  {proc:<11} {n_accept:>5} accepted of {res.n_generated:>6} generated "
              f"(eff {n_accept / res.n_generated:.3f}) in {res.seconds:6.1f} s: {rates[proc]:6.1f} accepted/s/core; "
              f"sigma x eff {accepted_pb:9.1f} pb")
    return rates


def wall_time(workers: int, cfg: GenerationConfig) -> float:
    ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        with tempfile.TemporaryDirectory() as cache:
            t = time.perf_counter()
            run_chunks(cfg, Path(cache), progress=False)
            return time.perf_counter() - t
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller samples (noisier figures)")
    args = parser.parse_args()
    scale = 0.25 if args.quick else 1.0
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print("single core, one chunk per process:")
    n = {"w": 1500, "qcd": 400, "z": 400, "ttbar": 150}
    rates = per_process_rates({p: max(20, int(v * scale)) for p, v in n.items()})
    cocktail = 1.0 / sum(f / rates[p] for p, f in BACKGROUND_FRACTIONS.items())
    print(f"W: {rates['w']:.1f} accepted/s/core (target >= 80)")
    print(f"cocktail ({', '.join(f'{p} {f:.1%}' for p, f in BACKGROUND_FRACTIONS.items())}): "
          f"{cocktail:.1f} accepted/s/core (target >= 20)")
    cfg = GenerationConfig(n_background=0, n_signal=int(1200 * scale), signals=("ato4l",),
                           chunk_size=int(150 * scale), seed=7)
    t1, t2 = wall_time(1, cfg), wall_time(2, cfg)
    print(f"Ray: {cfg.n_signal} A->4l events in {cfg.n_signal // cfg.chunk_size} chunks: 1 worker {t1:.1f} s, "
          f"2 workers {t2:.1f} s, speed-up {t1 / t2:.2f}x (target >= 1.8)")


if __name__ == "__main__":
    main()
