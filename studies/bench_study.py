"""Study cost: wall time and CPU-hours per trial, and ASHA against running every trial's full budget.

    python studies/bench_study.py

The same 8 configurations (4 learning rates x 2 seeds, smoke-size AnomCLR+ trials, 4 epochs) run once
with every trial to its end (one evaluation) and once with ASHA (evaluations after every epoch, the
worse half stopped at each rung). CPU-hours are the CPUs reserved for a trial times its wall time.
"""

import platform
import tempfile
import time

from anomclr_ray import study_script
from anomclr_ray import configs
from anomclr_ray.study import StudyConfig, run_study


def cost(study: StudyConfig) -> dict[str, float]:
    t = time.perf_counter()
    results = run_study(study)
    wall = time.perf_counter() - t
    last = [r.metrics for r in results if r.metrics]
    return {"trials": len(results), "wall_s": wall, "cpu_hours": sum(m["trial/cpu_hours"] for m in last),
            "trial_wall_s": sum(m["trial/wall_s"] for m in last) / len(last),
            "best_auc": max(m["auc/mean"] for m in last), "full_budget": sum(m["epoch"] == 4 for m in last)}


def main() -> None:
    args = study_script.parser(__doc__).parse_args(["--smoke"])
    print(f"machine: {platform.machine()}, data {args.data_dir}")
    with tempfile.TemporaryDirectory() as tmp:
        space = {"train.learning_rate": {"grid": [1e-5, 1e-4, 5e-4, 2e-3]}, "train.seed": {"grid": [0, 1]}}
        base = study_script.study(args, "bench_study", space, storage_path=tmp, tracking_uri=f"sqlite:///{tmp}/mlruns.db",
                                  **{"train.epochs": 4})
        rows = {}
        for label, extra in (("full budget", {}), ("ASHA", {"scheduler": "asha", "eval_every": 1})):
            rows[label] = cost(configs.override(base, {"name": f"bench_study_{label.split()[0].lower()}", **extra}))
    print(f"{'':<12}{'trials':>7}{'to the end':>11}{'wall s':>8}{'s/trial':>9}{'CPU-h':>8}{'best AUC':>10}{'AUC per CPU-h':>15}")
    for label, r in rows.items():
        print(f"{label:<12}{r['trials']:>7}{r['full_budget']:>11}{r['wall_s']:>8.0f}{r['trial_wall_s']:>9.1f}"
              f"{r['cpu_hours']:>8.4f}{r['best_auc']:>10.3f}{r['best_auc'] / r['cpu_hours']:>15.1f}")
    full, asha = rows["full budget"], rows["ASHA"]
    print(f"ASHA: {asha['cpu_hours'] / full['cpu_hours']:.2f}x the CPU-hours, best mean AUC "
          f"{asha['best_auc'] - full['best_auc']:+.3f}, {asha['best_auc'] / asha['cpu_hours'] / (full['best_auc'] / full['cpu_hours']):.2f}x "
          "the best AUC per CPU-hour")


if __name__ == "__main__":
    main()
