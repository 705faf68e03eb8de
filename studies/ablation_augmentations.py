"""Augmentation ablation (paper Fig. 2): each anomaly-augmentation mix x seeds, everything else fixed.

    python studies/ablation_augmentations.py --smoke          # minutes on a laptop CPU
    python studies/ablation_augmentations.py --address auto   # on a running Ray cluster
"""

import argparse
from pathlib import Path

from anomclr_ray.distributed import ScalingSpec
from anomclr_ray.events.dataset import DEFAULT_DATA_DIR, DataConfig
from anomclr_ray.model import ModelConfig
from anomclr_ray.pretrain import TrainConfig
from anomclr_ray.score import ScoreConfig
from anomclr_ray.study import StudyConfig, run_study
from anomclr_ray.tracking import DEFAULT_TRACKING_URI

MIXES = ["ao", "cs", "shift", "all"]


def build(args: argparse.Namespace) -> StudyConfig:
    if args.smoke:
        return StudyConfig(
            name="ablation_augmentations_smoke",
            search_space={"train.mix": {"grid": MIXES}},
            data=DataConfig(data_dir=str(args.data_dir), n_train=4000, n_test=4000, n_test_signal=2000),
            model=ModelConfig(model_dim=32, heads=4, layers=1, feedforward_dim=32, output_dim=32),
            train=TrainConfig(loss="anomclr_plus", epochs=2, batch_size=200, learning_rate=5e-4),
            score=ScoreConfig(epochs=10, batch_size=256),
            scaling=ScalingSpec(num_workers=1), tracking_uri=args.tracking_uri, storage_path=str(args.storage))
    return StudyConfig(
        name="ablation_augmentations",
        search_space={"train.mix": {"grid": MIXES}, "train.seed": {"grid": [0, 1, 2]}},
        data=DataConfig(data_dir=str(args.data_dir), n_train=50_000, n_test=40_000, n_test_signal=10_000),
        train=TrainConfig(loss="anomclr_plus", epochs=30, batch_size=512, learning_rate=5e-4),
        scaling=ScalingSpec(num_workers=args.workers, use_gpu=args.gpu), ae_seeds=(0, 1, 2),
        tracking_uri=args.tracking_uri, storage_path=str(args.storage))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a few minutes on CPU")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--tracking-uri", default=DEFAULT_TRACKING_URI)
    parser.add_argument("--address", default=None, help="Ray cluster address ('auto' on a cluster head)")
    parser.add_argument("--storage", type=Path, default=Path("runs"), help="Ray Tune / Train storage")
    parser.add_argument("--workers", type=int, default=1, help="DDP workers per trial")
    parser.add_argument("--gpu", action="store_true", help="one GPU per DDP worker")
    args = parser.parse_args()
    study = build(args)
    results = run_study(study, address=args.address)
    best = results.get_best_result(metric=study.metric, mode="max")
    print(f"{len(results)} trials; best {study.metric} = {best.metrics[study.metric]:.3f} "
          f"(mix {best.config['train.mix']})")
    print(f"MLflow: mlflow ui --backend-store-uri {study.tracking_uri}   (experiment {study.name})")


if __name__ == "__main__":
    main()
