"""Cost of one contrastive trial at the reproduction size (AnomCLR+, mix `all`, seed 0; the sizes of
`study_script.SIZES`): its wall time, the share spent in evaluation, and its per-signal AUCs.

    python studies/bench_trial.py [--smoke] [--padded]

`--padded` runs the encoder over all 19 slots (`ModelConfig.packed = False`), as before the packed
encoder: the same seeds give the same results up to float rounding, so the wall times compare the code.
"""

import platform
import tempfile
import time

import torch

from anomclr_ray import study_script
from anomclr_ray.study import run_study


def main() -> None:
    parser = study_script.parser(__doc__)
    parser.add_argument("--padded", action="store_true", help="the encoder over all 19 slots")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        study = study_script.study(args, "bench_trial", {"train.seed": {"grid": [0]}}, storage_path=tmp,
                                   tracking_uri=f"sqlite:///{tmp}/mlruns.db",
                                   **{"train.loss": "anomclr_plus", "model.packed": not args.padded})
        print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads; {study.data.n_train} training "
              f"events, {study.train.epochs} epochs, model {study.model.model_dim} dims, "
              f"{'packed' if study.model.packed else 'padded'} encoder")
        t = time.perf_counter()
        (result,) = run_study(study)
        wall = time.perf_counter() - t
    m = result.metrics
    evaluation = m.get("trial/evaluation_s")
    print(f"study wall time {wall:.0f} s; trial {m['trial/wall_s']:.0f} s"
          + (f", of which evaluation {evaluation:.0f} s ({evaluation / m['trial/wall_s']:.0%})" if evaluation else ""))
    print("AUC " + ", ".join(f"{k.split('/')[1]} {v:.4f}" for k, v in m.items() if k.startswith("auc/")))


if __name__ == "__main__":
    main()
