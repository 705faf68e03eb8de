"""A chaos run: a study on a loopback Ray cluster while faults hit it on a seeded schedule, then what
MLflow holds checked against the same study run without faults.

    python studies/chaos.py                          # 4 AnomCLR+ trials x 8 epochs, 4 faults
    python studies/chaos.py --trials 2 --epochs 4 --faults 2 --seed 1

The cluster: a Ray head offering no CPU (with its dashboard on 127.0.0.1: Ray Train's clean-up after a
lost node needs its state API), one 2-CPU node offering the trials' custom resource, an MLflow server on
127.0.0.1 (SQLite behind it), study storage on local disk. The study runs first undisturbed
(the reference), then again under faults, each drawn from: the trials' node SIGKILLed with its workers
(a new node starts 5 s later, as a cloud replaces a lost one), the tracking server SIGKILLed (restarted on
the same port and store after `--server-down` s), the study's driver SIGKILLed (the same command run again
restores the study). Every process this script kills it started itself.

Printed: the faults, both walls, and from MLflow per trial: its runs, their status, the loss history's
epochs (each once?) and its largest difference from the reference's, the final metrics' largest
difference. Figures: docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from anomclr_ray import configs
from anomclr_ray.report.tracking import TRIAL_TAG, client
from anomclr_ray.report.ui import wait_until_up
from anomclr_ray.study import StudyConfig

RAY = str(Path(sys.executable).parent / "ray")
SCRIPT = Path(__file__).resolve().parent / "loss_comparison.py"  # any study script runs a --config
FAULTS = ("node", "server", "driver")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL `proc`'s process group (it was started in a session of its own) and reap the leader."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


class Cluster:
    """The processes of the loopback cluster, each in its own process group, and how to start each again."""

    def __init__(self, tmp: Path):
        self.tmp, self.port, self.mlflow_port = tmp, _free_port(), _free_port()
        self.address, self.tracking = f"127.0.0.1:{self.port}", f"http://127.0.0.1:{self.mlflow_port}"
        self.ray_tmp = tempfile.mkdtemp(prefix="ray")  # short: Ray's socket paths live under it
        self.procs: dict[str, subprocess.Popen] = {}
        self.started = 0

    def _spawn(self, name: str, cmd: list[str]) -> subprocess.Popen:
        self.started += 1
        log = open(self.tmp / f"{name}{self.started}.log", "w")
        # Ray's processes know their cluster: Ray Train's placement-group cleaner finds the one it asks by
        # auto-detection, which with another Ray on the machine errs or picks the last one started
        env = {**os.environ, "RAY_ADDRESS": self.address}
        self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        return self.procs[name]

    def _ray_nodes(self) -> int:
        out = subprocess.run([RAY, "status", f"--address={self.address}"], capture_output=True, text=True)
        return out.stdout.count("node_") if out.returncode == 0 else 0

    def start_head(self) -> None:
        self._spawn("head", [RAY, "start", "--head", "--block", f"--port={self.port}", "--num-cpus=0",
                             "--dashboard-host=127.0.0.1", f"--dashboard-port={_free_port()}",  # the state API
                             f"--temp-dir={self.ray_tmp}", "--disable-usage-stats"])
        self._wait(lambda: self._ray_nodes() >= 1, "the Ray head")

    def start_node(self) -> None:
        self._spawn("node", [RAY, "start", "--block", f"--address={self.address}", "--num-cpus=2",
                             f"--resources={json.dumps({'chaos_node': 100})}", f"--temp-dir={self.ray_tmp}",
                             "--disable-usage-stats"])
        self._wait(lambda: self._ray_nodes() >= 2, "the trials' node")

    def start_server(self) -> None:
        self._spawn("server", [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port",
                               str(self.mlflow_port), "--backend-store-uri", f"sqlite:///{self.tmp}/server.db",
                               "--artifacts-destination", str(self.tmp / "mlartifacts")])
        wait_until_up("127.0.0.1", self.mlflow_port, self.procs["server"], timeout=300)

    def _wait(self, ready, what: str, timeout: float = 180) -> None:
        deadline = time.time() + timeout
        while not ready():
            if time.time() > deadline:
                raise SystemExit(f"chaos.py: {what} did not come up in {timeout:.0f} s (logs in {self.tmp})")
            time.sleep(1)

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            _kill(proc)


def _study(args, cluster: Cluster, name: str) -> StudyConfig:
    return configs.build(StudyConfig, {
        "data.n_train": args.events, "data.n_test": 2000, "data.n_test_signal": 1000, "model.model_dim": 32,
        "model.heads": 4, "model.layers": 1, "train.epochs": args.epochs, "train.batch_size": 200,
        "score.epochs": 10, "score.batch_size": 256, "ae_seeds": [0], "scaling.custom_resources": {"chaos_node": 1},
        "eval_every": args.epochs // 2, "tracking_uri": cluster.tracking, "storage_path": str(cluster.tmp / "runs"),
        "scaling.worker_restarts": 2, "max_failures": 2},
        {"name": name, "search_space": {"train.loss": {"grid": ["anomclr_plus"]},
                                        "train.seed": {"grid": list(range(args.trials))}}})


def _run(args, cluster: Cluster, study: StudyConfig, faults: list[str], rng: random.Random) -> tuple[float, list]:
    """Run `study` to its end while `faults` hit it (in order, at seeded times); (wall s, [(t, fault)])."""
    config = configs.dump(study, cluster.tmp / f"{study.name}.yaml")
    cmd = [sys.executable, str(SCRIPT), "--config", str(config), "--address", cluster.address,
           "--reports", str(cluster.tmp / "reports")]
    t0, done, attempts = time.perf_counter(), [], 0
    driver = cluster._spawn("driver", cmd)
    next_at = rng.uniform(*args.gap)
    while True:
        if (rc := driver.poll()) is not None:
            attempts += 1
            if rc == 0:
                return time.perf_counter() - t0, done
            if attempts > len(faults) + 1:
                raise SystemExit(f"chaos.py: the study exited {rc} (log {cluster.tmp / f'driver{cluster.started}.log'})")
            driver = cluster._spawn("driver", cmd)  # a failed execution: the same command restores the study
        elif faults and time.perf_counter() - t0 > next_at:
            fault = faults.pop(0)
            done.append((round(time.perf_counter() - t0), fault))
            print(f"  {done[-1][0]:>5} s: {fault}", flush=True)
            if fault == "node":
                _kill(cluster.procs["node"])
                time.sleep(5)
                cluster.start_node()
            elif fault == "server":
                _kill(cluster.procs["server"])
                time.sleep(args.server_down)
                cluster.start_server()
            else:
                _kill(driver)
                attempts += 1
                driver = cluster._spawn("driver", cmd)
            next_at = time.perf_counter() - t0 + rng.uniform(*args.gap)
        time.sleep(1)


def _trials(tracking: str, name: str) -> dict[str, list]:
    """{train.seed: [(run, loss history {epoch: value}), ...]} of the study's trial runs."""
    c = client(tracking)
    exp = c.get_experiment_by_name(name)
    found: dict[str, list] = {}
    for run in c.search_runs([exp.experiment_id]):
        if TRIAL_TAG in run.data.tags:
            history = [(m.step, m.value) for m in c.get_metric_history(run.info.run_id, "train/loss")]
            found.setdefault(run.data.params["train.seed"], []).append((run, history))
    return found


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=4)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--events", type=int, default=3000, help="the encoder's training events")
    p.add_argument("--faults", type=int, default=4)
    p.add_argument("--gap", type=float, nargs=2, default=[20.0, 45.0], help="seconds between faults (uniform)")
    p.add_argument("--server-down", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    rng = random.Random(args.seed)
    faults = [FAULTS[i % len(FAULTS)] for i in range(args.faults)]
    rng.shuffle(faults)
    with tempfile.TemporaryDirectory(prefix="chaos") as tmp:
        cluster = Cluster(Path(tmp))
        try:
            cluster.start_server()
            cluster.start_head()
            cluster.start_node()
            print(f"reference: {args.trials} AnomCLR+ trials x {args.epochs} epochs, no faults", flush=True)
            ref_wall, _ = _run(args, cluster, _study(args, cluster, "chaos_reference"), [], rng)
            print(f"chaos: the same study, faults {faults}", flush=True)
            wall, done = _run(args, cluster, _study(args, cluster, "chaos"), list(faults), rng)
            ref, got = _trials(cluster.tracking, "chaos_reference"), _trials(cluster.tracking, "chaos")
            c = client(cluster.tracking)
            parent = [r for r in c.search_runs([c.get_experiment_by_name("chaos").experiment_id])
                      if TRIAL_TAG not in r.data.tags]
        finally:
            cluster.stop()
    print(f"faults injected ({len(done)}): " + ", ".join(f"{f} at {t} s" for t, f in done))
    print(f"wall: reference {ref_wall:.0f} s, under faults {wall:.0f} s")
    print(f"parent runs: {[r.info.status for r in parent]}")
    bad = 0
    for seed in sorted(ref, key=int):
        runs = got.get(seed, [])
        (ref_run, ref_hist), = ref[seed]
        line = f"trial seed {seed}: {len(runs)} run(s) {[r.info.status for r, _ in runs]}"
        if len(runs) == 1:
            run, hist = runs[0]
            steps = [s for s, _ in hist]
            loss_diff = max((abs(a - b) for (_, a), (_, b) in zip(sorted(hist), sorted(ref_hist))), default=float("nan"))
            keys = [k for k in ref_run.data.metrics if k.startswith(("auc/", "si/"))]
            metric_diff = max((abs(run.data.metrics.get(k, float("inf")) - ref_run.data.metrics[k]) for k in keys),
                              default=float("nan"))
            line += (f"; loss epochs {sorted(steps)} ({'each once' if sorted(steps) == list(range(args.epochs)) else 'NOT each once'})"
                     f"; max |loss - reference| {loss_diff:.3g}; max |AUC, SI - reference| over {len(keys)} {metric_diff:.3g}")
            bad += sorted(steps) != list(range(args.epochs)) or run.info.status != "FINISHED"
        else:
            bad += 1
        print(line)
    print("every trial once, FINISHED, every epoch once" if not bad else f"{bad} trials NOT as expected")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
