"""Representation dimension (paper Fig. 3): AUC and SI versus the encoder's model dimension, read against
the AE-Raw baseline (one trial per seed).

    python studies/representation_dimension.py --smoke
    python studies/representation_dimension.py
    python studies/representation_dimension.py --paper --address auto --gpu

The model, feed-forward and output (head) dimensions move together; 4 heads divide every value.
"""

from anomclr_ray import study_script


def main() -> None:
    parser = study_script.parser(__doc__)
    parser.add_argument("--dims", type=int, nargs="+", help="model dimensions (multiples of 4)")
    args = parser.parse_args()
    dims = args.dims or ([8, 16, 32] if args.smoke else [8, 16, 32, 64, 128])
    seeds = study_script.seeds(args, [0, 1])
    study = study_script.study(args, "representation_dimension",
                               {"model.model_dim": {"grid": dims}, "train.seed": {"grid": seeds}},
                               baseline=True, **{"train.loss": "anomclr_plus"})
    study_script.run(study, args)


if __name__ == "__main__":
    study_script.entry(main)
