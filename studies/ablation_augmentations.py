"""Augmentation ablation (paper Fig. 2): each anomaly-augmentation mix x CLR seeds, all else fixed, read
against the AE-Raw baseline (one trial per seed: the mix does not apply to it).

    python studies/ablation_augmentations.py --smoke          # about a minute on a laptop CPU
    python studies/ablation_augmentations.py                  # reproduction size (CPU, hours)
    python studies/ablation_augmentations.py --paper --address auto --gpu   # on a GPU cluster
"""

from anomclr_ray import study_script
from anomclr_ray.method.augment import mixes


def main() -> None:
    args = study_script.parser(__doc__).parse_args()
    seeds = study_script.seeds(args, [0, 1, 2])
    study = study_script.study(args, "ablation_augmentations",
                               {"train.mix": {"grid": list(mixes())}, "train.seed": {"grid": seeds}},
                               baseline=True, **{"train.loss": "anomclr_plus"})
    study_script.run(study, args)


if __name__ == "__main__":
    study_script.entry(main)
