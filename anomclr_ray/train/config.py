"""What contrastive pretraining is asked to do: `TrainConfig` (loss, augmentations, optimiser, epochs),
`PretrainJob` (what `anomclr pretrain` runs) and the one batch-size check."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError
from ..events.dataset import DataConfig
from ..method import augment
from ..method.losses import LOSSES, VICREG_WEIGHTS
from ..method.model import ModelConfig

PRECISIONS = ("float32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    loss: str = "anomclr_plus"
    temperature: float = 0.1
    mix: str = "all"
    learning_rate: float = 5e-5
    batch_size: int = 256
    epochs: int = 10
    seed: int = 0
    augment_strength: float = 1.0
    precision: str = "float32"  # "bf16": the encoder under bfloat16 autocast (the losses stay float32)
    vicreg_weights: tuple[float, float, float] = VICREG_WEIGHTS  # vicreg: invariance, variance, covariance
    mask_probability: float = 0.0  # > 0: the physical view also drops each object with this probability
    pt_resampling: float = 0.0  # > 0: the physical view also resamples each pT from N(pT, this * pT)

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ConfigError(f"TrainConfig.precision: unknown {self.precision!r}, expected one of {', '.join(PRECISIONS)}")
        if self.loss not in LOSSES:
            raise ConfigError(f"TrainConfig.loss: unknown loss {self.loss!r}: expected one of {', '.join(LOSSES)}")
        augment.parse_mix(self.mix)
        if not self.temperature > 0:
            raise ConfigError(f"TrainConfig.temperature must be > 0, got {self.temperature}")
        if not self.learning_rate > 0:
            raise ConfigError(f"TrainConfig.learning_rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.mask_probability < 1 or self.pt_resampling < 0:
            raise ConfigError(f"TrainConfig: mask_probability in [0, 1) and pt_resampling >= 0 needed, got "
                             f"{self.mask_probability}, {self.pt_resampling}")
        if min(self.vicreg_weights) < 0:
            raise ConfigError(f"TrainConfig.vicreg_weights must be >= 0, got {self.vicreg_weights}")
        if self.batch_size < 2 or self.epochs < 1:
            raise ConfigError(f"TrainConfig: batch_size >= 2 and epochs >= 1 needed, got {self.batch_size}, {self.epochs}")


@dataclass(frozen=True)
class PretrainJob:
    """What `anomclr pretrain` runs (its config.yaml): the training events [0, data.n_train), the
    encoder and its training."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        check_batch_size(self.train, self.data.n_train)


def check_batch_size(cfg: TrainConfig, n_train: int, workers: int = 1) -> None:
    """The one check that a global batch fits the training set and splits evenly over the workers."""
    if cfg.batch_size > n_train:
        raise ConfigError(f"TrainConfig.batch_size ({cfg.batch_size}) is larger than the {n_train} training events")
    if cfg.batch_size % workers:
        raise ConfigError(f"TrainConfig.batch_size ({cfg.batch_size}) must be a multiple of the {workers} workers")
