"""A user's mistake is one line and exit 2; a bug keeps its traceback (the CLI and the study scripts alike)."""

import subprocess
import sys

import pytest

from anomclr_ray import USER_ERRORS, cli, configs, study_script
from anomclr_ray.errors import ConfigError, DataError, MissingFileError, ServiceError, UserError
from anomclr_ray.events.io import EventFile
from anomclr_ray.report.tracking import check_tracking
from anomclr_ray.study import StudyConfig
from conftest import free_port


@pytest.mark.parametrize("bug", [ValueError("Input contains NaN"),  # what numpy/sklearn say of an AE gone to NaN
                                 FloatingPointError("pretrain: loss is nan at epoch 3 batch 7"),
                                 FileNotFoundError("/tmp/ray/session_latest: no such file")])
def test_a_bug_keeps_its_traceback(bug, monkeypatch):
    def validate(args):
        raise bug

    monkeypatch.setattr(cli, "_validate", validate)
    with pytest.raises(type(bug)):  # not turned into "error: ..." and exit 2
        cli.main(["validate", "--data-dir", "anywhere"])
    with pytest.raises(type(bug)):
        study_script.entry(lambda: validate(None))


def test_a_user_error_is_one_line_and_exit_2(monkeypatch, capsys):
    def validate(args):
        raise DataError("background.h5:Particles: has shape (10, 19, 3), expected (N, 19, 4)")

    monkeypatch.setattr(cli, "_validate", validate)
    assert cli.main(["validate", "--data-dir", "anywhere"]) == 2
    assert capsys.readouterr().err == ("anomclr validate: error: background.h5:Particles: has shape (10, 19, 3), "
                                       "expected (N, 19, 4)\n")
    with pytest.raises(SystemExit) as exit_:
        study_script.entry(lambda: validate(None))
    assert exit_.value.code == 2 and capsys.readouterr().err.count("\n") == 1


def test_what_a_user_gets_wrong_raises_a_user_error(tmp_path):
    """Each family (config, data, unreachable service) raises its own type, which is also the built-in
    one a caller without this package would catch."""
    assert USER_ERRORS == (UserError,)
    with pytest.raises(ConfigError, match="unknown key 'train.epoch'"):
        configs.override(StudyConfig(name="x", search_space={}), ["train.epoch=3"])
    with pytest.raises(ConfigError, match="StudyConfig.search"):
        StudyConfig(name="x", search_space={}, search="random")
    with pytest.raises(MissingFileError) as missing:
        EventFile(tmp_path / "none.h5")
    assert isinstance(missing.value, FileNotFoundError)
    (tmp_path / "not.h5").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="not.h5"):
        EventFile(tmp_path / "not.h5")
    with pytest.raises(ServiceError, match="not reachable") as down:
        check_tracking(f"http://127.0.0.1:{free_port()}")
    assert isinstance(down.value, ConnectionError)


def test_a_study_scripts_bug_exits_1_with_its_traceback(tmp_path):
    """The other side of `entry`: a non-user exception leaves the script with Python's traceback."""
    script = tmp_path / "buggy.py"
    script.write_text("from anomclr_ray import study_script\n"
                      "def main():\n    raise ValueError('operands could not be broadcast together')\n"
                      "study_script.entry(main)\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "Traceback (most recent call last)" in out.stderr
