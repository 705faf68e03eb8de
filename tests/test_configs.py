"""The config grammar: one serialisation (plain data, YAML) that round-trips every config, and overrides
that name fields by their dotted path, type-checked, refused with the valid keys when unknown."""

import pytest

from anomclr_ray import configs, study_script
from anomclr_ray.configs import ConfigError
from anomclr_ray.train.distributed import ScalingSpec
from anomclr_ray.method.evaluate import ScoreJob
from anomclr_ray.events.dataset import DataConfig
from anomclr_ray.events.generation.detector import DetectorConfig
from anomclr_ray.events.generation.runner import GenerationConfig
from anomclr_ray.events.preprocess import Preprocessor
from anomclr_ray.method.model import ModelConfig
from anomclr_ray.train import PretrainJob, TrainConfig
from anomclr_ray.method.score import ScoreConfig
from anomclr_ray.study import StudyConfig

STUDY = StudyConfig(name="s", search_space={"train.mix": {"grid": ["ao", "cs"]}, "train.temperature":
                                            {"loguniform": [0.05, 0.5]}},
                    data=DataConfig(signals=("ato4l", "hc_taunu"), n_val=10, n_val_signal=5),
                    model=ModelConfig(model_dim=32, output_dim=16), score=ScoreConfig(hidden=(64, 8)),
                    scaling=ScalingSpec(custom_resources={"gpu_node": 1.0}), ae_seeds=(0, 1), metric="val_auc/mean")


@pytest.mark.parametrize("cfg", [STUDY, PretrainJob(), ScoreJob(ae_seeds=(3,)), Preprocessor(pt_scale=31.5),
                                 GenerationConfig(n_background=10, n_signal=5, signals=("ato4l",),
                                                  detector=DetectorConfig(electron_iso_max=0.1, pileup_mean=20.0))],
                         ids=lambda c: type(c).__name__)
def test_every_config_round_trips_through_yaml(cfg, tmp_path):
    path = configs.dump(cfg, tmp_path / "c.yaml")
    assert configs.load(type(cfg), path) == cfg
    assert configs.from_plain(type(cfg), configs.to_plain(cfg)) == cfg


def test_overrides_are_parsed_as_yaml_and_checked_against_the_field_type():
    s = configs.override(STUDY, ["train.epochs=3", "train.learning_rate=5e-5", "eps_s=0.5", "ae_seeds=[4, 5]",
                                 "model.output_dim=null", "name=2024", "data.signals=[ato4l]"])
    assert (s.train.epochs, s.train.learning_rate, s.eps_s, s.ae_seeds) == (3, 5e-5, 0.5, (4, 5))
    assert s.model.output_dim is None and s.name == "2024" and s.data.signals == ("ato4l",)
    assert isinstance(s.train.learning_rate, float) and isinstance(s.ae_seeds, tuple)
    assert s.train.loss == STUDY.train.loss and s.model.model_dim == 32  # everything else as it was
    assert configs.override(STUDY, {"model.dropout": 0}).model.dropout == 0.0  # an int where a float goes


@pytest.mark.parametrize("override, message", [
    ("train.epoch=3", "unknown key 'train.epoch': TrainConfig (train) has loss, temperature, mix,"),
    ("trian.epochs=3", "unknown key 'trian.epochs': StudyConfig has name, search_space, data.*, model.*"),
    ("train.epochs=three", "train.epochs: expected int, got 'three'"),
    ("train.epochs=2.5", "train.epochs: expected int, got 2.5"),
    ("model.packed=3", "model.packed: expected bool, got 3"),
    ("ae_seeds=3", "ae_seeds: expected a list"),
    ("train=3", "key 'train' is a section: set its fields, e.g. train.loss=..."),
    ("eps_s.x=1", "unknown key 'eps_s.x': eps_s is a value, not a section"),
    ("train.epochs", "override 'train.epochs': expected KEY=VALUE"),
    ("train.loss=sinclr", "TrainConfig.loss: unknown loss 'sinclr'"),  # the config's own validation
])
def test_a_bad_override_is_refused_naming_the_key_and_what_was_expected(override, message):
    with pytest.raises(ValueError) as err:
        configs.override(STUDY, [override])
    assert message in str(err.value)


def test_overrides_are_validated_together_not_one_by_one():
    """model_dim=6 alone does not divide into 4 heads; with heads=2 in the same command it is valid."""
    assert configs.override(STUDY, ["model.model_dim=6", "model.heads=2"]).model.model_dim == 6
    with pytest.raises(ValueError, match=r"model_dim \(6\) must be a multiple of heads \(4\)"):
        configs.override(STUDY, ["model.model_dim=6"])


def test_a_bad_config_file_names_the_file_and_the_field(tmp_path):
    (tmp_path / "typo.yaml").write_text("train:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=r"typo.yaml: PretrainJob.train: unknown field 'epoch'; TrainConfig has loss"):
        configs.load(PretrainJob, tmp_path / "typo.yaml")
    (tmp_path / "broken.yaml").write_text("train: [1,\n")
    with pytest.raises(ConfigError, match=r"broken.yaml:\d+:\d+: not a YAML file: "):
        configs.load(PretrainJob, tmp_path / "broken.yaml")
    with pytest.raises(ConfigError, match="missing.yaml: cannot read the config file"):
        configs.load(PretrainJob, tmp_path / "missing.yaml")
    (tmp_path / "partial.yaml").write_text("train:\n  epochs: 3\n")  # missing fields: the dataclass defaults
    assert configs.load(PretrainJob, tmp_path / "partial.yaml") == PretrainJob(train=TrainConfig(epochs=3))


@pytest.mark.parametrize("size", ["--smoke", "--paper", None])
def test_every_size_is_a_valid_row_of_overrides_and_set_comes_last(size, monkeypatch):
    monkeypatch.delenv("ANOMCLR_STORAGE", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    argv = [size] if size else []
    args = study_script.parser(None).parse_args([*argv, "--set", "train.epochs=7", "--storage", "elsewhere"])
    s = study_script.study(args, "x", {"train.seed": {"grid": [0, 1]}}, **{"train.loss": "clr"})
    row = study_script.SIZES[study_script.size(args)]
    assert s.name == {"--smoke": "x_smoke", "--paper": "x_paper", None: "x"}[size]
    assert s.train.epochs == 7 and s.train.loss == "clr" and s.storage_path == "elsewhere"
    assert s.data.n_train == row["data.n_train"] and s.model.model_dim == row.get("model.model_dim", 136)
    assert s.tracking_uri == "sqlite:///mlruns.db"


def test_a_study_file_runs_as_it_was_with_the_command_lines_changes(tmp_path):
    args = study_script.parser(None).parse_args(["--smoke"])
    s = study_script.study(args, "x", {"train.mix": {"grid": ["ao"]}}, eval_every=1)
    path = configs.dump(s, tmp_path / "study.yaml")
    again = study_script.parser(None).parse_args(["--config", str(path), "--set", "eps_s=0.4", "--workers", "2"])
    assert study_script.study(again, "ignored", {}, eval_every=5) == configs.override(
        s, {"eps_s": 0.4, "scaling.num_workers": 2})
    with pytest.raises(SystemExit):  # a file is a whole study: not with a size
        study_script.parser(None).parse_args(["--config", str(path), "--smoke"])
