"""Ray custom metrics for watching a running study (Prometheus through Ray's metrics export, Grafana).

Ray exports these with a `ray_` prefix (counters also get `_total`); `dashboards/anomclr_study.json`
queries exactly the names in `EXPORTED` (tested). Every call is a no-op outside a Ray worker.
"""

from __future__ import annotations

import time

TRAIN_EVENTS = "anomclr_train_events"  # counter: events trained on, per worker (rate = events/s)
TRAIN_LOSS = "anomclr_train_loss"  # gauge: the last batch's contrastive loss (mean over workers)
TRAIN_EPOCH = "anomclr_train_epoch"  # gauge: epochs finished
TRIALS_STARTED = "anomclr_trials_started"  # counter, per study
TRIALS_EVALUATED = "anomclr_trial_evaluations"  # counter: evaluations reported to Tune (ASHA rungs)
TRIALS_COMPLETED = "anomclr_trials_completed"  # counter: trials that ran their whole budget
EXPORTED = (TRAIN_EVENTS, TRAIN_LOSS, TRAIN_EPOCH, TRIALS_STARTED, TRIALS_EVALUATED, TRIALS_COMPLETED)


def prometheus_name(name: str) -> str:
    """The series name Prometheus sees for one of our metrics."""
    counters = (TRAIN_EVENTS, TRIALS_STARTED, TRIALS_EVALUATED, TRIALS_COMPLETED)
    return f"ray_{name}_total" if name in counters else f"ray_{name}"


def _in_ray() -> bool:
    import ray

    return ray.is_initialized()


class TrainMonitor:
    """Per-batch training progress of one Ray Train run (tag `run`), flushed at most every `every` s."""

    def __init__(self, run: str, every: float = 2.0):
        self.enabled = _in_ray()
        self.every, self.pending, self.last = every, 0, time.monotonic()
        if self.enabled:
            from ray.util.metrics import Counter, Gauge

            self.tags = {"run": run}
            self.events = Counter(TRAIN_EVENTS, "events trained on", tag_keys=("run",))
            self.loss = Gauge(TRAIN_LOSS, "contrastive loss of the last batch", tag_keys=("run",))
            self.epoch = Gauge(TRAIN_EPOCH, "epochs finished", tag_keys=("run",))

    def batch(self, n_events: int, loss) -> None:
        """After a training step; `loss` (a float or 0-dim tensor) is read only when flushed."""
        if not self.enabled:
            return
        self.pending += n_events
        now = time.monotonic()
        if now - self.last >= self.every:
            self.flush(loss)

    def flush(self, loss: float) -> None:
        if self.enabled and self.pending:
            self.events.inc(self.pending, tags=self.tags)
            self.loss.set(float(loss), tags=self.tags)
            self.pending, self.last = 0, time.monotonic()

    def epoch_done(self, epoch: int, loss: float) -> None:
        self.flush(loss)
        if self.enabled:
            self.epoch.set(epoch + 1, tags=self.tags)


class StudyMonitor:
    """Trial life cycle counters of one study (tag `study`)."""

    def __init__(self, study: str):
        self.enabled = _in_ray()
        if self.enabled:
            from ray.util.metrics import Counter

            self.tags = {"study": study}
            self.counters = {name: Counter(name, name.replace("_", " "), tag_keys=("study",))
                             for name in (TRIALS_STARTED, TRIALS_EVALUATED, TRIALS_COMPLETED)}

    def count(self, name: str) -> None:
        if self.enabled:
            self.counters[name].inc(1, tags=self.tags)
