"""Learning curve: AnomCLR+ over the encoder's training events x epochs, against AE-Raw, to see whether
the contrastive side still gains where the reproduction size stops (the paper: 1M events x 100 epochs).

    python studies/learning_curve.py --smoke
    python studies/learning_curve.py                      # 25k / 50k / 100k events x 10 / 20 / 40 epochs
    python studies/learning_curve.py --events 25000 50000 --epochs 10 20

The AE keeps its own 60k background events (`data.n_ae`) and its 50 epochs at every point, so only the
encoder's budget moves. The test events follow the encoder's and the AE's, so each events value has its
own AE-Raw trial on the same test events (AE-Raw trains no encoder: the epochs do not apply to it).
"""

from anomclr_ray import study_script


def main() -> None:
    parser = study_script.parser(__doc__)
    parser.add_argument("--events", type=int, nargs="+", help="encoder training events (data.n_train)")
    parser.add_argument("--epochs", type=int, nargs="+", help="encoder training epochs (train.epochs)")
    args = parser.parse_args()
    events = args.events or ([2000, 4000] if args.smoke else [25_000, 50_000, 100_000])
    epochs = args.epochs or ([1, 2] if args.smoke else [10, 20, 40])
    seeds = study_script.seeds(args, [0])
    study = study_script.study(args, "learning_curve",
                               {"data.n_train": {"grid": events}, "train.epochs": {"grid": epochs},
                                "train.seed": {"grid": seeds}},
                               baseline=True, **{"train.loss": "anomclr_plus",
                                                 **({"data.n_ae": 2000} if args.smoke else {})})
    study_script.run(study, args)


if __name__ == "__main__":
    study_script.entry(main)
