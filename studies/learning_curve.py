"""Learning curve: a contrastive method (AnomCLR+ unless --method) over the encoder's training events x
epochs, against AE-Raw, to see whether the contrastive side still gains where the reproduction size stops
(the paper: 1M events x 100 epochs).

    python studies/learning_curve.py --smoke
    python studies/learning_curve.py                      # 25k / 50k / 100k events x 10 / 20 / 40 epochs
    python studies/learning_curve.py --events 25000 50000 --epochs 10 20
    python studies/learning_curve.py --method anomclr --events 50000 100000 --epochs 20 40   # study learning_curve_anomclr

The AE keeps its own 60k background events (`data.n_ae`) and its 50 epochs at every point, so only the
encoder's budget moves. The test events follow the encoder's and the AE's, so each events value has its
own AE-Raw trial on the same test events (AE-Raw trains no encoder: the epochs do not apply to it).
"""

from anomclr_ray import study_script
from anomclr_ray.method.losses import LOSSES

DEFAULT = "anomclr_plus"  # its study keeps the name "learning_curve"


def main() -> None:
    parser = study_script.parser(__doc__)
    parser.add_argument("--events", type=int, nargs="+", help="encoder training events (data.n_train)")
    parser.add_argument("--epochs", type=int, nargs="+", help="encoder training epochs (train.epochs)")
    parser.add_argument("--method", choices=LOSSES, default=DEFAULT, help=f"the encoder's (default {DEFAULT})")
    args = parser.parse_args()
    events = args.events or ([2000, 4000] if args.smoke else [25_000, 50_000, 100_000])
    epochs = args.epochs or ([1, 2] if args.smoke else [10, 20, 40])
    seeds = study_script.seeds(args, [0])
    name = "learning_curve" if args.method == DEFAULT else f"learning_curve_{args.method}"
    study = study_script.study(args, name,
                               {"data.n_train": {"grid": events}, "train.epochs": {"grid": epochs},
                                "train.seed": {"grid": seeds}},
                               baseline=True, **{"train.loss": args.method,
                                                 **({"data.n_ae": 2000} if args.smoke else {})})
    study_script.run(study, args)


if __name__ == "__main__":
    study_script.entry(main)
