"""The full search (Optuna TPE through Ray Tune, ASHA early stopping): temperature, representation
dimension, augmentation mix, loss, AE bottleneck, learning rate, batch size.

    python studies/hpo.py --smoke
    python studies/hpo.py
    python studies/hpo.py --objective proxy
    python studies/hpo.py --paper --address auto --gpu

Trials are evaluated every few epochs; ASHA stops the worse half at each rung. The objective is the
mean AUC over the four signals on a validation set (a quarter of the test background and of each test
signal set aside), so the test metrics in the report come from events the search never saw. With
`--objective proxy` no signal is looked at: the search maximises `proxy_auc/all`, the AUC of the
validation background against its own anomaly-augmented views (study `hpo_proxy`); the report shows
how that choice ranks against the test AUC.
"""

from anomclr_ray import study_script
from anomclr_ray.method.augment import mixes
from anomclr_ray.method.names import PROXY_DEFAULT

OBJECTIVES = {"validation": "val_auc/mean", "proxy": PROXY_DEFAULT}
SPACE = {
    "train.temperature": {"loguniform": [0.03, 1.0]},
    "model.model_dim": {"choice": [16, 32, 64, 128]},
    "train.mix": {"choice": list(mixes())},
    "method": {"choice": ["clr", "anomclr", "anomclr_plus"]},
    "score.bottleneck": {"choice": [2, 5, 8]},
    "train.learning_rate": {"loguniform": [1e-5, 2e-3]},
    "train.batch_size": {"choice": [128, 256, 512]},
}


def main() -> None:
    p = study_script.parser(__doc__)
    p.add_argument("--objective", choices=OBJECTIVES, default="validation",
                   help="what the search maximises: the validation signals' mean AUC, or the signal-free "
                        f"{PROXY_DEFAULT} (default: validation)")
    args = p.parse_args()
    samples, every = (4, 1) if args.smoke else (64, 10) if args.paper else (24, 5)
    space = {**SPACE, "model.model_dim": {"choice": [16, 32]}} if args.smoke else SPACE
    name = "hpo" if args.objective == "validation" else "hpo_proxy"
    study = study_script.study(args, name, space, search="tpe", num_samples=samples, scheduler="asha",
                               eval_every=every, metric=OBJECTIVES[args.objective],
                               **study_script.validation_split(args))
    study_script.run(study, args)


if __name__ == "__main__":
    study_script.entry(main)
