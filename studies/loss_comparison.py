"""Loss comparison (paper Table 2): AE-Raw, CLR, AnomCLR and AnomCLR+ over CLR seeds x AE seeds.

    python studies/loss_comparison.py --smoke                 # minutes on a laptop CPU
    python studies/loss_comparison.py                         # reproduction size (CPU, hours)
    python studies/loss_comparison.py --paper --address auto --gpu
    python studies/loss_comparison.py --method-settings docs/tuned/choices_proxy.yaml   # each at its own search's choice

Nothing here is tuned on the test signals: the settings are the published code's defaults (docs/method.md)
scaled to the machine, or with --method-settings each method's choice of its own search
(studies/tuned_choices.py), study loss_comparison_<file stem>.
"""

from pathlib import Path

from anomclr_ray.method import names
from anomclr_ray import configs, study_script

METHODS = [names.BASELINE, "clr", "anomclr", "anomclr_plus"]  # the AnomalyCLR paper's


def main() -> None:
    p = study_script.parser(__doc__)
    p.add_argument("--method-settings", type=Path, default=None, metavar="YAML",
                   help="{method: {key: value}} each method runs with (e.g. docs/tuned/choices_proxy.yaml)")
    args = p.parse_args()
    seeds = study_script.seeds(args, [0, 1, 2])
    name, tuned = "loss_comparison", {}
    if args.method_settings:
        name, tuned = f"{name}_{args.method_settings.stem}", {"method_settings": configs.read_yaml(args.method_settings)}
    study = study_script.study(args, name, {names.METHOD_KEY: {"grid": METHODS}, "train.seed": {"grid": seeds}},
                               **{"train.mix": "all"}, **tuned)
    study_script.run(study, args)


if __name__ == "__main__":
    study_script.entry(main)
