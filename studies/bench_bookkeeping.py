"""Study bookkeeping at scale: many trials of a few seconds each through Ray Tune, Ray and MLflow.

    python studies/bench_bookkeeping.py --trials 200

Minimal AE-Raw trials (a few hundred events, one AE seed, one AE epoch): what is left of a trial is the
platform's own work per trial (the trial's process, its data, its evaluation task, the MLflow logging
with its figures and scorer, Tune's state). Printed: the study's wall time against the theoretical
minimum (the trials' own wall times summed, over the concurrency), and how many trials ended in each
final state.
"""

import argparse
import platform
import tempfile
import time
from collections import Counter

from anomclr_ray import configs
from anomclr_ray.study import StudyConfig, concurrent_trials, run_study


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=200)
    args = p.parse_args()
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        study = configs.build(StudyConfig, {
            "data.n_train": 300, "data.n_test": 300, "data.n_test_signal": 100, "score.epochs": 1,
            "score.batch_size": 64, "score.hidden": [16, 8], "score.bottleneck": 2, "ae_seeds": [0],
            "train.epochs": 1, "tracking_uri": f"sqlite:///{tmp}/mlruns.db", "storage_path": tmp},
            {"name": "bench_bookkeeping", "search_space": {"method": {"grid": ["ae_raw"]},
                                                           "train.seed": {"grid": list(range(args.trials))}}})
        t0 = time.perf_counter()
        results = run_study(study)
        wall = time.perf_counter() - t0
        concurrency = concurrent_trials(study.scaling, ray.cluster_resources())
    own = [r.metrics["trial/wall_s"] for r in results if r.metrics and "trial/wall_s" in r.metrics]
    states = Counter("ERROR" if r.error else "TERMINATED" if r.metrics else "UNFINISHED" for r in results)
    minimum = sum(own) / concurrency
    print(f"machine: {platform.machine()}; {len(results)} trials, {concurrency} at once")
    print(f"study wall {wall:.0f} s; trials' own time {sum(own):.0f} s (mean {sum(own) / max(len(own), 1):.1f} s); "
          f"theoretical minimum {minimum:.0f} s; overhead {wall / minimum:.2f}x")
    print("final states:", dict(states))


if __name__ == "__main__":
    main()
