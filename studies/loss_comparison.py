"""Loss comparison (paper Table 2): AE-Raw, CLR, AnomCLR and AnomCLR+ over CLR seeds x AE seeds.

    python studies/loss_comparison.py --smoke                 # minutes on a laptop CPU
    python studies/loss_comparison.py                         # reproduction size (CPU, hours)
    python studies/loss_comparison.py --paper --address auto --gpu

Nothing here is tuned on the test signals: the settings are the published code's defaults (docs/method.md) scaled to the machine.
"""

from anomclr_ray.method import names
from anomclr_ray import study_script

METHODS = [names.BASELINE, "clr", "anomclr", "anomclr_plus"]  # the AnomalyCLR paper's


def main() -> None:
    args = study_script.parser(__doc__).parse_args()
    seeds = study_script.seeds(args, [0, 1, 2])
    study = study_script.study(args, "loss_comparison",
                               {names.METHOD_KEY: {"grid": METHODS}, "train.seed": {"grid": seeds}},
                               **{"train.mix": "all"})
    study_script.run(study, args)


if __name__ == "__main__":
    study_script.entry(main)
