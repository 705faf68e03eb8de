"""MLflow tracking: one experiment per study, a parent run per study execution, a nested run per trial.

Everything goes through an explicit `MlflowClient(uri)`, so Ray workers log without global state.
A trial's run is tagged with its Tune trial id; logging the same trial again (a restored study)
finds that run instead of making a second one.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from pathlib import Path
from typing import Any

from ..configs import to_plain
from ..errors import PlaceError, ServiceError

DEFAULT_TRACKING_URI = "sqlite:///mlruns.db"
TRACKING_ENV = "MLFLOW_TRACKING_URI"  # MLflow's own variable; the cluster YAMLs export the head's server
TRIAL_TAG = "anomclr.trial_id"
STUDY_TAG = "anomclr.study"
STORAGE_TAG = "anomclr.storage"  # a parent run: where its study's Tune state lives (finds it after a lost record)
STOPPED_TAG = "anomclr.stopped_early"  # a trial run: "true" when the scheduler stopped it before its budget
STOPPED_AT_TAG = "anomclr.stopped_at_epoch"  # ... and the epoch it had reached
ERROR_TAG = "anomclr.error"  # a FAILED trial run: the error's first line
NODE_TAG = "anomclr.ray_node"  # the Ray node a trial ran on (its last evaluation's, after a restore)
GIT_COMMIT_TAG = "mlflow.source.git.commit"  # MLflow's own tag: the UI shows it as the run's source version
GIT_DIRTY_TAG = "anomclr.git_dirty"  # "true" when the checkout had uncommitted changes
STUDY_CONFIG_FILE = "study.yaml"  # a parent run's artifact: the whole StudyConfig, read back by `--config`
CURVES_FILE = "curves.npz"  # a trial run's ROC curves per signal (`metrics.save_curves`), read by reports
VIEW_KEY = "anomclr"  # MLflow UI shared view: ...#/experiments/<id>/runs?viewStateShareKey=anomclr
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"


def default_tracking_uri() -> str:
    """$MLFLOW_TRACKING_URI when set (on a cluster: the head's server), else the local SQLite store."""
    return os.environ.get(TRACKING_ENV) or DEFAULT_TRACKING_URI


def code_tags(path: Path = Path(__file__).parent) -> dict[str, str]:
    """The git commit of the checkout this code runs from and whether it had changes not committed
    (untracked files not ignored count), as run tags; {} outside a git checkout."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, check=True,
                              timeout=30).stdout
    try:
        commit, changes = git("rev-parse", "HEAD").strip(), git("status", "--porcelain")
    except (OSError, subprocess.SubprocessError):
        return {}
    return {GIT_COMMIT_TAG: commit, GIT_DIRTY_TAG: str(bool(changes.strip())).lower()}


def flatten(config: Any, prefix: str = "") -> dict[str, str]:
    """A config (dataclass or nested plain dict) -> {"train.temperature": "0.1", ...}: the one
    flattening used for MLflow params."""
    out: dict[str, str] = {}
    for k, v in to_plain(config).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = json.dumps(v) if isinstance(v, (list, tuple)) else str(v)
    return out


def absolute_uri(uri: str) -> str:
    """`sqlite:///relative.db` -> `sqlite:////abs/path/relative.db`: Ray runs trials in other directories."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(uri[len("sqlite:///"):]).resolve())
    return uri


BUSY_WAIT_S = 600.0  # how long a call waits out a tracking store that is busy or gone (`PatientClient`)


def client(uri: str) -> "PatientClient":
    """The MLflow client of a store, patient with it when it is busy (`PatientClient`)."""
    from mlflow.tracking import MlflowClient

    return PatientClient(MlflowClient(tracking_uri=uri))


class PatientClient:
    """An `MlflowClient` whose calls wait out a store that is busy or briefly gone, for up to `BUSY_WAIT_S`
    with jittered exponential backoff:

    - a locked SQLite file: MLflow's SQL store gives it 20 s (its busy timeout), then raises
      TEMPORARILY_UNAVAILABLE without retrying; with 128 trials logging at once on one node a fifth of
      them lost their runs or metrics (docs/reliability.md). The transaction did not commit, so
      repeating the call loses and duplicates nothing;
    - a tracking server that does not answer (restarted, its node lost): MLflow's HTTP client retries
      for a few minutes, then raises; the call is repeated until the server is back, so a trial's
      results wait in memory instead of failing the trial (and spending the retries that lost nodes
      need). Creating a run is the exception (`create_run_once`): a server may have created it before
      its answer was lost, so its creation is looked for before it is repeated.

    Past `BUSY_WAIT_S` the error goes on, naming the store."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name: str):
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            from mlflow.exceptions import MlflowException

            deadline, delay = time.monotonic() + BUSY_WAIT_S, 0.05
            while True:
                try:
                    return attr(*args, **kwargs)
                except MlflowException as err:
                    if not _waitable(err, name) or time.monotonic() > deadline:
                        raise
                time.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(2 * delay, 10.0)

        return call


def _waitable(err, call: str) -> bool:
    """A locked SQLite store (any call), or a server that did not answer (any call but `create_run`)."""
    if err.error_code == "TEMPORARILY_UNAVAILABLE" and "locked" in str(err):
        return True
    return call != "create_run" and _unreachable(err)


def _unreachable(err: Exception) -> bool:
    """MLflow's HTTP client gave up on a server: no connection, or no answer, after its own retries."""
    text = str(err)
    return any(s in text for s in ("Max retries exceeded", "Connection refused", "ConnectionError",
                                   "RemoteDisconnected", "Connection aborted"))


def create_run_once(c: PatientClient, find, exp_id: str, **kwargs):
    """`c.create_run(exp_id, **kwargs)`, waiting out a server that does not answer, and never twice:
    after a failed attempt `find()` (the run, or None) looks for what the server may have made."""
    from mlflow.exceptions import MlflowException

    deadline, delay = time.monotonic() + BUSY_WAIT_S, 0.5
    while True:
        try:
            return c.create_run(exp_id, **kwargs)
        except MlflowException as err:
            if not _unreachable(err) or time.monotonic() > deadline:
                raise
        time.sleep(delay * random.uniform(0.5, 1.5))
        delay = min(2 * delay, 10.0)
        if (made := find()) is not None:
            return made


def check_tracking(uri: str) -> None:
    """Fail fast with a clear message when the tracking store cannot be reached or written."""
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///"):])
        if not path.parent.resolve().exists():
            raise PlaceError(f"MLflow tracking URI {uri}: directory {path.parent} does not exist")
    if uri.startswith(("http://", "https://")):
        # a direct probe: MLflow's own client retries with backoff for minutes before it gives up
        import urllib.error
        import urllib.request

        try:
            urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5).close()
        except (urllib.error.URLError, OSError) as err:
            raise ServiceError(f"MLflow tracking store {uri} is not reachable: {err}") from None
    from mlflow.exceptions import MlflowException

    try:
        client(uri).search_experiments(max_results=1)
    except (MlflowException, OSError) as err:  # a store it cannot open or reach (SQL errors arrive wrapped)
        raise ServiceError(f"MLflow tracking store {uri} is not reachable: {type(err).__name__}: {err}") from None


def experiment_id(uri: str, name: str, artifact_root: str | None = None) -> str:
    """The study's experiment, created on first use. A tracking server stores (or proxies) artifacts
    itself; with a local store they go to `artifact_root`/<name> (a URI: file:, s3:, gs:), default
    ./mlartifacts."""
    c = client(uri)
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    if uri.startswith(("http://", "https://")):  # the server stores (or proxies) artifacts itself
        return c.create_experiment(name)
    return c.create_experiment(name, artifact_location=f"{artifact_root or Path('mlartifacts').resolve().as_uri()}/{name}")


def start_parent_run(uri: str, exp_id: str, study: str, params: dict[str, Any], tags: dict[str, str] | None = None,
                     artifacts: list[Path] = ()) -> str:
    """A parent run for this execution of the study (a restored study reuses its parent run id), with
    `tags` and `artifacts` (e.g. the study's config file)."""
    from mlflow.entities import Param

    c = client(uri)
    run = c.create_run(exp_id, run_name=f"{study}-{time.strftime('%Y%m%d-%H%M%S')}",
                       tags={STUDY_TAG: study, **(tags or {})})
    c.log_batch(run.info.run_id, params=[Param(k, v[:6000]) for k, v in flatten(params).items()])
    for path in artifacts:
        c.log_artifact(run.info.run_id, str(path))
    set_study_view(uri, exp_id, run.info.run_id)
    return run.info.run_id


def set_study_view(uri: str, exp_id: str, parent_run_id: str) -> None:
    """The experiment's shared MLflow UI view: trials expanded under their parent runs, sorted by mean
    AUC, with the method and the AUC per signal as columns (what the UI does not show by default)."""
    from ..events.layout import SIGNALS
    from ..method.names import MEAN, METHOD_KEY, metric_key

    c = client(uri)
    old = c.get_experiment(exp_id).tags.get(VIEW_TAG)
    expanded = json.loads(old).get("runsExpanded", {}) if old else {}
    columns = [f"params.`{METHOD_KEY}`", *(f"metrics.`{metric_key('auc', s)}`" for s in (*SIGNALS, MEAN)),
               f"metrics.`{metric_key('si', MEAN)}`"]
    view = {"orderByKey": f"metrics.`{metric_key('auc', MEAN)}`", "orderByAsc": False, "selectedColumns": columns,
            "runsExpanded": {**expanded, parent_run_id: True}}
    c.set_experiment_tag(exp_id, VIEW_TAG, json.dumps(view))


def log_trial(uri: str, exp_id: str, parent_run_id: str, trial_id: str, trial_name: str, params: dict[str, Any],
              metrics: dict[str, float], step: int, curves: dict[str, dict[int, float]], artifacts: list[Path],
              finished: bool, start_time: float | None = None, node: str | None = None,
              tags: dict[str, str] | None = None, folders: dict[str, Path] | None = None) -> str:
    """A trial's nested run: params once, then `metrics` at `step` (one call per evaluation, e.g. per ASHA
    rung), per-step `curves` ({name: {step: value}}), artifact files (replaced by later calls).
    `start_time` (Unix seconds) is when the trial started, for the run's duration; `node`, the Ray node
    the trial runs on, becomes a tag, as do `tags` (e.g. `code_tags`); `folders` ({artifact path: local
    folder}) are logged whole.

    The run is found by its trial id under this parent run, so a restored study never makes a second one
    (and it is RUNNING again); params it lacks are logged then (a kill between creating the run and its
    first batch leaves none).
    """
    from mlflow.entities import Metric, Param

    c = client(uri)

    def find():
        return next(iter(_trial_runs(c, exp_id, parent_run_id, trial_id)), None)

    if (found := find()) is not None:
        rid, logged = found.info.run_id, found.data.params
        if found.info.status != "RUNNING" and not finished:  # a resumed trial (its study was stopped): running again
            c.update_run(rid, status="RUNNING")
        if node:
            c.set_tag(rid, NODE_TAG, node)
    else:
        tags = {"mlflow.parentRunId": parent_run_id, TRIAL_TAG: trial_id, **(tags or {})} | ({NODE_TAG: node} if node else {})
        run = create_run_once(c, find, exp_id, run_name=trial_name, tags=tags,
                              start_time=int(1000 * start_time) if start_time else None)
        rid, logged = run.info.run_id, run.data.params
    new_params = [Param(k, v[:6000]) for k, v in flatten(params).items() if k not in logged]
    now = int(time.time() * 1000)
    ms = [Metric(k, float(v), now, step) for k, v in metrics.items()]
    ms += [Metric(k, float(v), now, s) for k, vals in curves.items() for s, v in vals.items()]
    for i in range(0, max(len(ms), len(new_params)), 900):  # MLflow takes at most 1000 metrics per batch
        c.log_batch(rid, metrics=ms[i:i + 900], params=new_params[i:i + 900])
    for path in artifacts:
        c.log_artifact(rid, str(path))
    for name, folder in (folders or {}).items():  # e.g. the trial's scorer, as artifact folder `name`
        c.log_artifacts(rid, str(folder), name)
    if finished:
        c.set_terminated(rid)
    return rid


def _trial_runs(c, exp_id: str, parent_run_id: str, trial_id: str) -> list:
    return c.search_runs([exp_id], filter_string=f"tags.`{TRIAL_TAG}` = '{trial_id}' and "
                                                 f"tags.`mlflow.parentRunId` = '{parent_run_id}'")


def end_trial_run(uri: str, exp_id: str, parent_run_id: str, trial_id: str, *, error: str | None = None,
                  stopped_at: int | None = None, trial_name: str | None = None) -> str:
    """End a trial's run with its true status: FAILED with `error` (its first line) as a tag, else
    FINISHED, tagged as stopped early at epoch `stopped_at` when the scheduler stopped it before its
    budget. A trial that failed before it logged anything gets a run that says so (named `trial_name`)."""
    c = client(uri)
    if found := _trial_runs(c, exp_id, parent_run_id, trial_id):
        rid = found[0].info.run_id
    else:
        rid = c.create_run(exp_id, run_name=trial_name or trial_id,
                           tags={"mlflow.parentRunId": parent_run_id, TRIAL_TAG: trial_id}).info.run_id
    if error is not None:
        c.set_tag(rid, ERROR_TAG, error[:5000])
    elif stopped_at is not None:
        c.set_tag(rid, STOPPED_TAG, "true")
        c.set_tag(rid, STOPPED_AT_TAG, str(stopped_at))
    c.set_terminated(rid, status="FAILED" if error is not None else "FINISHED")
    return rid


def set_run_status(uri: str, run_id: str, status: str) -> None:
    """A run's status: RUNNING (a restored study's parent, reopened), or its end: FINISHED, FAILED, KILLED."""
    c = client(uri)
    if status == "RUNNING":
        c.update_run(run_id, status="RUNNING")
    else:
        c.set_terminated(run_id, status=status)
