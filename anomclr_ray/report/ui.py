"""The MLflow UI on a study's store, bound to loopback, and a headless-Chromium look at it.

`anomclr ui` serves the UI; `anomclr ui --screenshot PNG --experiment NAME` starts it, renders the
study's trial table (the shared view set by tracking.set_study_view) with headless Chromium into a PNG
and stops. The same rendering checks the UI in the tests.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .tracking import VIEW_KEY, absolute_uri
from ..errors import ServiceError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def ui_command(uri: str, host: str = "127.0.0.1", port: int = 5000) -> list[str]:
    """`mlflow ui` on the store, with one worker process: the UI serves one person's browser, and MLflow's
    default of 4 workers doubles its start (25 against 14 s of CPU measured on 2 cores)."""
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", absolute_uri(uri), "--host", host,
            "--port", str(port), "--workers", "1"]


def view_url(host: str, port: int, exp_id: str) -> str:
    """The study's trial table in the UI: sorted by mean AUC, AUC per signal as columns."""
    return f"http://{host}:{port}/#/experiments/{exp_id}/runs?viewStateShareKey={VIEW_KEY}"


def wait_until_up(host: str, port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"the MLflow UI exited with status {proc.returncode} before serving")
        try:
            urllib.request.urlopen(f"http://{host}:{port}/health", timeout=2).close()
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"the MLflow UI did not answer on {host}:{port} within {timeout:.0f} s")


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if path := shutil.which(name):
            return path
    return None


def render(url: str, png: str | Path | None = None, width: int = 1600, height: int = 700,
           wait_ms: int = 30_000) -> str:
    """The page's DOM after its scripts ran (headless Chromium); also a PNG screenshot when `png`."""
    chromium = find_chromium()
    if chromium is None:
        raise ServiceError("no Chromium found (Debian: apt-get install chromium)")
    base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--virtual-time-budget={wait_ms}", f"--window-size={width},{height}"]
    dom = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=180, check=True).stdout
    if png is not None:
        png = Path(png).resolve()
        png.parent.mkdir(parents=True, exist_ok=True)
        png.unlink(missing_ok=True)
        subprocess.run([*base, f"--screenshot={png}", url], capture_output=True, timeout=180, check=True)
        if not png.exists():
            raise RuntimeError(f"Chromium wrote no screenshot to {png}")
    return dom
