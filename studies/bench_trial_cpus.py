"""Does a study compute on more CPUs than it reserved? Two trials side by side on this machine.

    python studies/bench_trial_cpus.py                  # the default: 2 trials, eval after each of 4 epochs
    python studies/bench_trial_cpus.py --set score.nplm.toys=5 score.nplm.null_toys=20

Two AnomCLR+ trials (two seeds) at a small size, each evaluated (3 AEs, the probe, the proxy metrics)
after every epoch, run as one study while a thread samples the machine's runnable threads
(`procs_running` of /proc/stat) every 0.1 s, and the resident memory of the study's Ray processes
(`ray::` workers: the trials' processes, Train controllers and workers, evaluation tasks) every 0.5 s.
Printed: the study's wall time, the mean number of runnable threads, the fraction of the time more
threads were runnable than the machine has cores (oversubscription), and the peak memory of the Ray
worker processes, per running trial. Run it on an otherwise idle machine: every runnable thread counts.
"""

import os
import platform
import tempfile
import threading
import time

import numpy as np

from anomclr_ray import study_script
from anomclr_ray.study import run_study


def ray_workers_rss() -> float:
    """GiB resident in this machine's `ray::` worker processes."""
    import psutil

    total = 0
    for proc in psutil.process_iter(["cmdline", "memory_info"]):
        cmd = proc.info["cmdline"] or []
        if cmd and cmd[0].startswith("ray::") and proc.info["memory_info"]:
            total += proc.info["memory_info"].rss
    return total / 2**30


def runnable() -> int:
    with open("/proc/stat") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("procs_running"))


def main() -> None:
    args = study_script.parser(__doc__).parse_args()
    args.smoke = True
    with tempfile.TemporaryDirectory() as tmp:
        study = study_script.study(args, "bench_trial_cpus", {"train.seed": {"grid": [0, 1]}}, storage_path=tmp,
                                   tracking_uri=f"sqlite:///{tmp}/mlruns.db", eval_every=1, ae_seeds=[0, 1, 2],
                                   **{"train.epochs": 4, "data.n_train": 3000, "score.epochs": 20})
        samples, memory, stop = [], [], threading.Event()

        def sample() -> None:
            while not stop.is_set():
                samples.append(runnable() - 1)  # less this sampler
                if len(samples) % 5 == 0:
                    memory.append(ray_workers_rss())
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.perf_counter()
        results = run_study(study)
        wall = time.perf_counter() - t0
        stop.set()
        sampler.join()
    cores, s = os.cpu_count(), np.array(samples)
    evaluation = [r.metrics.get("trial/evaluation_s", float("nan")) for r in results]
    print(f"machine: {platform.machine()}, {cores} cores; {len(results)} trials, {len(results.errors)} failed")
    print(f"study wall {wall:.0f} s; evaluation per trial {np.nanmean(evaluation):.0f} s; runnable threads mean "
          f"{s.mean():.2f}, p95 {np.percentile(s, 95):.0f}; time with more runnable threads than cores "
          f"{(s > cores).mean():.0%}")
    print(f"Ray worker processes: peak {max(memory):.2f} GiB resident with {len(results)} trials running side by side "
          f"({max(memory) / len(results):.2f} GiB per trial)")


if __name__ == "__main__":
    study_script.entry(main)
