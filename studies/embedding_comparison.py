"""Embedding comparison (Metzger et al., arXiv:2502.15926): SimCLR, SupCon, VICReg and AnomCLR+, each with
the MLP and the transformer encoder, at low embedding dimensions, x CLR seeds, read against AE-Raw.
The report plots AUC and SI per signal and the linear probe's accuracy on the process labels against
the embedding dimension, one line per method x encoder.

    python studies/embedding_comparison.py --smoke
    python studies/embedding_comparison.py --dims 2 4 8 16
    python studies/embedding_comparison.py --encoders transformer --methods supcon anomclr_plus
    python studies/embedding_comparison.py --paper --address auto --gpu

Every trial also runs NPLM, the signal-agnostic test, on its embedding (`score.nplm`: toys sized to the
test split; the report plots its power P(Z > 3) against the injected signal fraction).

One temperature for all (train.temperature, 0.1: theirs for the transformer; their MLP runs used 0.9,
`--set train.temperature=0.9`). The AE bottleneck is half the smallest embedding dimension, the same
for every trial and for AE-Raw.
"""

from anomclr_ray.method import names
from anomclr_ray import study_script

METHODS = ["simclr", "supcon", "vicreg", "anomclr_plus"]
ENCODERS = ["mlp", "transformer"]
# NPLM per size: smoke toys take seconds; the reproduction size's pools are its 40k test events, and
# 5 % is added to their 0.1-1 % injections (with 3,000 background events per toy, the first shipped set
# showed no detection below 2 %: docs/nplm.md)
NPLM = {"smoke": {"toys": 10, "null_toys": 30, "n_reference": 2500, "n_background": 500, "centres": 200},
        "reproduction": {"toys": 20, "null_toys": 100, "centres": 500, "fractions": [0.001, 0.005, 0.01, 0.05]},
        "paper": {}}


def main() -> None:
    parser = study_script.parser(__doc__)
    parser.add_argument("--dims", type=int, nargs="+", default=[4, 16], help="embedding dimensions")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=METHODS, help="default: all four")
    parser.add_argument("--encoders", nargs="+", choices=ENCODERS, default=ENCODERS, help="default: both")
    args = parser.parse_args()
    seeds = study_script.seeds(args, [0, 1])
    space = {names.METHOD_KEY: {"grid": args.methods}, "model.kind": {"grid": args.encoders},
             "model.embedding_dim": {"grid": args.dims}, "train.seed": {"grid": seeds}}
    study = study_script.study(args, "embedding_comparison", space, baseline=True,
                               **{"score.bottleneck": max(1, min(args.dims) // 2),
                                  "score.nplm": NPLM[study_script.size(args)]})
    study_script.run(study, args)


if __name__ == "__main__":
    study_script.entry(main)
