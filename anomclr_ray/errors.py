"""What a user's input can get wrong, as exception types of their own: the command line tools and study
scripts print these as one line and exit with status 2 (`USER_ERRORS`); anything else is a bug and keeps
its traceback (in a trial it reaches MLflow as the run's failure reason).

Each is also the built-in exception a caller would catch without knowing this module (a `ConfigError`
is a `ValueError`, an unreachable service a `ConnectionError`, a missing file a `FileNotFoundError`).
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user handed the platform, said in one line naming the file, field or place."""


class ConfigError(UserError, ValueError):
    """A config, a config file, an override or a command-line argument that cannot be run."""


class DataError(UserError, ValueError):
    """An event file that is not what the ADC2021 layout and the config need (keys, shapes, values, counts)."""


class MissingFileError(DataError, FileNotFoundError):
    """An input file or sample that is not where the user said."""


class ServiceError(UserError, ConnectionError):
    """A service the study needs (the MLflow tracking store, a Ray cluster) that cannot be reached or used."""


class PlaceError(UserError, ValueError):
    """A place to write (an output directory, the study storage) that cannot be used."""


class ClusterError(UserError, ValueError):
    """A Ray cluster on which the study would not work: what one node would see that the others cannot."""


class StudyChangedError(ConfigError):
    """A study restored by its name and storage with a config other than the one it was started with."""


USER_ERRORS = (UserError,)
