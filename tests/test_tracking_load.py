"""The default SQLite store under load: a trial's logging waits out a store locked by other writers."""

import sqlite3
import threading
import time

import pytest

from anomclr_ray.report.tracking import client, experiment_id, log_trial, start_parent_run


@pytest.mark.slow
def test_a_trial_logs_through_a_store_locked_longer_than_mlflows_busy_timeout(tmp_path):
    """Another writer holds the SQLite file for 25 s, past MLflow's 20 s busy timeout (after which its SQL
    store raises TEMPORARILY_UNAVAILABLE and does not retry: what lost 14 % of the metrics of 128
    concurrent trial loggers). The trial's run, params and metrics all land, once, when the lock goes."""
    db = tmp_path / "mlruns.db"
    uri = f"sqlite:///{db}"
    exp = experiment_id(uri, "load", (tmp_path / "mlartifacts").as_uri())
    parent = start_parent_run(uri, exp, "load", {"name": "load"})
    lock = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    lock.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(25, lambda: lock.execute("COMMIT"))
    release.start()
    t0 = time.monotonic()
    try:
        log_trial(uri, exp, parent, "t0", "trial 0", {"train": {"mix": "ao"}}, {"auc/mean": 0.7, "si/mean": 2.0}, 2,
                  {"train/loss": {0: 1.0, 1: 0.5}}, [], finished=True)
    finally:
        release.join()
        lock.close()
    assert time.monotonic() - t0 > 20  # it really waited past the busy timeout
    runs = [r for r in client(uri).search_runs([exp]) if r.info.run_id != parent]
    assert len(runs) == 1 and runs[0].data.params == {"train.mix": "ao"}
    assert runs[0].data.metrics == {"auc/mean": 0.7, "si/mean": 2.0, "train/loss": 0.5}
    assert [m.value for m in client(uri).get_metric_history(runs[0].info.run_id, "train/loss")] == [1.0, 0.5]


def test_a_study_says_before_it_starts_when_the_sqlite_store_will_queue_its_trials():
    from anomclr_ray.study import SQLITE_WRITERS, store_limit

    assert store_limit("sqlite:////x/mlruns.db", SQLITE_WRITERS) is None
    assert "128 trials at once on the SQLite store" in store_limit("sqlite:////x/mlruns.db", 128)
    assert store_limit("http://127.0.0.1:5000", 128) is None
