"""The full search (Optuna TPE through Ray Tune, ASHA early stopping): temperature, representation
dimension, augmentation mix, loss, AE bottleneck, learning rate, batch size.

    python studies/hpo.py --smoke
    python studies/hpo.py
    python studies/hpo.py --objective proxy
    python studies/hpo.py --objective proxy --method anomclr   # one method's own hyper-parameters
    python studies/hpo.py --paper --address auto --gpu

Trials are evaluated every few epochs; ASHA stops the worse half at each rung. The objective is the
mean AUC over the four signals on a validation set (a quarter of the test background and of each test
signal set aside), so the test metrics in the report come from events the search never saw. With
`--objective proxy` no signal is looked at: the search maximises `proxy_auc/all`, the AUC of the
validation background against its own anomaly-augmented views (study `hpo_proxy`); the report shows
how that choice ranks against the test AUC.

With `--method` the search keeps one method and searches its own hyper-parameters (`method_space`):
for a contrastive loss τ, dimension, learning rate, batch size, the AE bottleneck and, where the loss
uses anomaly augmentations, the mix; for AE-Raw its AE's settings. Within one method the signal-free
proxy ranks settings fairly (docs/method.md). Study `hpo_<method>` / `hpo_proxy_<method>`.
"""

from typing import Any

from anomclr_ray import study_script
from anomclr_ray.method.augment import mixes
from anomclr_ray.method.losses import ANOMALY, LOSSES
from anomclr_ray.method.names import BASELINE, METHOD_KEY, PROXY_DEFAULT

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
METHODS = [BASELINE, "clr", "anomclr", "anomclr_plus"]  # the AnomalyCLR paper's, one search each with --method
# AE-Raw has no encoder: its search is over what its AE exposes
AE_SPACE = {
    "score.bottleneck": {"choice": [2, 3, 5, 8, 12]},
    "score.learning_rate": {"loguniform": [1e-4, 1e-2]},
    "score.batch_size": {"choice": [128, 256, 512, 1024]},
    "score.standardise": {"choice": [False, True]},
    "score.raw_one_hot": {"choice": [False, True]},
}


def method_space(method: str, smoke: bool = False) -> tuple[dict[str, dict[str, list]], dict[str, Any]]:
    """(search space, fixed settings) of a search over one method's own hyper-parameters."""
    if method == BASELINE:
        return {METHOD_KEY: {"choice": [BASELINE]}, **AE_SPACE}, {}
    keep = {"train.temperature", "model.model_dim", "train.learning_rate", "train.batch_size", "score.bottleneck"}
    if LOSSES[method].views == ANOMALY:  # the mix sets its anomaly augmentations
        keep.add("train.mix")
    space = {k: v for k, v in SPACE.items() if k in keep}
    if smoke:
        space["model.model_dim"] = {"choice": [16, 32]}
    return space, {"train.loss": method}


def main() -> None:
    p = study_script.parser(__doc__)
    p.add_argument("--objective", choices=OBJECTIVES, default="validation",
                   help="what the search maximises: the validation signals' mean AUC, or the signal-free "
                        f"{PROXY_DEFAULT} (default: validation)")
    p.add_argument("--method", choices=METHODS, default=None,
                   help="search one method's own hyper-parameters (default: the method is one of them)")
    args = p.parse_args()
    samples, every = (4, 1) if args.smoke else (64, 10) if args.paper else (24, 5)
    name = "hpo" if args.objective == "validation" else "hpo_proxy"
    if args.method:
        space, fixed = method_space(args.method, args.smoke)
        name = f"{name}_{args.method}"
    else:
        space, fixed = ({**SPACE, "model.model_dim": {"choice": [16, 32]}} if args.smoke else SPACE), {}
    study = study_script.study(args, name, space, search="tpe", num_samples=samples, scheduler="asha",
                               eval_every=every, metric=OBJECTIVES[args.objective],
                               **study_script.validation_split(args), **fixed)
    study_script.run(study, args)


if __name__ == "__main__":
    study_script.entry(main)
