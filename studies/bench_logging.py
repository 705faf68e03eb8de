"""Logging load: N trial loggers at once into one MLflow store, as an ASHA rung or a 128-core node makes.

    python studies/bench_logging.py --writers 128                      # the default SQLite store
    python studies/bench_logging.py --writers 128 --server             # an `mlflow server` on loopback

Each writer is its own process and calls the platform's `log_trial` as a trial does: three evaluations
of 60 metrics, 4 curves of 20 points and one small artifact, all released at the same moment. Printed:
writers that raised, runs created (expected N), runs missing a metric key, and the p50 / p99 / max time
of one trial's logging (its three calls).
"""

import argparse
import multiprocessing as mp
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

EVALUATIONS, METRICS, CURVES, POINTS = 3, 60, 4, 20


def writer(uri: str, exp: str, parent: str, i: int, start: float, tmp: str, out) -> None:
    from anomclr_ray.report.tracking import log_trial

    artifact = Path(tmp) / f"trial_{i}.yaml"
    artifact.write_text(f"trial: {i}\n")
    time.sleep(max(0.0, start - time.time()))  # every writer released at once
    t0 = time.perf_counter()
    try:
        for step in range(1, EVALUATIONS + 1):
            metrics = {f"m{k}/x": float(k * step) for k in range(METRICS)}
            curves = {f"c{k}": {s: float(s) for s in range(POINTS * (step - 1), POINTS * step)} for k in range(CURVES)}
            log_trial(uri, exp, parent, f"t{i:04d}", f"trial {i}", {"i": i}, metrics, step, curves, [artifact],
                      finished=step == EVALUATIONS)
        out.put((i, time.perf_counter() - t0, None))
    except Exception as err:  # noqa: BLE001 - the benchmark counts every failure, whatever it is
        out.put((i, time.perf_counter() - t0, f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--writers", type=int, default=128)
    p.add_argument("--server", action="store_true", help="log through `mlflow server` (127.0.0.1) on the same SQLite file")
    args = p.parse_args()
    from anomclr_ray.report.tracking import client, experiment_id, start_parent_run

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlruns.db"
        server = None
        if args.server:
            port = 5987
            server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port",
                                       str(port), "--backend-store-uri", uri, "--artifacts-destination",
                                       f"{tmp}/artifacts", "--workers", "2"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
            uri = f"http://127.0.0.1:{port}"
            for _ in range(120):
                try:
                    client(uri).search_experiments(max_results=1)
                    break
                except Exception:  # noqa: BLE001 - not up yet
                    time.sleep(1)
        try:
            exp = experiment_id(uri, "load", Path(tmp, "mlartifacts").as_uri())
            parent = start_parent_run(uri, exp, "load", {"name": "load"})
            ctx = mp.get_context("spawn")
            out = ctx.Queue()
            start = time.time() + 15 + args.writers * 0.3  # after every writer has imported MLflow
            procs = [ctx.Process(target=writer, args=(uri, exp, parent, i, start, tmp, out)) for i in range(args.writers)]
            for proc in procs:
                proc.start()
            done = [out.get() for _ in procs]
            for proc in procs:
                proc.join()
            runs = [r for r in client(uri).search_runs([exp], max_results=10_000) if r.info.run_id != parent]
        finally:
            if server:
                server.terminate()
                server.wait()
    seconds = np.array([d[1] for d in done])
    errors = [d[2] for d in done if d[2]]
    keys = {f"m{k}/x" for k in range(METRICS)} | {f"c{k}" for k in range(CURVES)}
    incomplete = sum(not keys <= set(r.data.metrics) for r in runs)
    print(f"machine: {platform.machine()}, {mp.cpu_count()} cores; store: {'mlflow server' if args.server else 'SQLite'}")
    print(f"writers {args.writers}: {len(errors)} raised, {len(runs)} of {args.writers} runs, {incomplete} runs missing "
          f"a metric key; one trial's logging p50 {np.percentile(seconds, 50):.1f} s, p99 "
          f"{np.percentile(seconds, 99):.1f} s, max {seconds.max():.1f} s")
    for e in sorted(set(errors))[:5]:
        print("  error:", e)


if __name__ == "__main__":
    main()
