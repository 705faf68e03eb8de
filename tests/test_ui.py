"""The MLflow UI as a physicist sees it: served on 127.0.0.1, rendered by headless Chromium."""

import socket
import subprocess

import pytest
from conftest import AUC_EXAMPLE, free_port, listening_addresses, log_synthetic_study

from anomclr_ray.report.ui import find_chromium, render, ui_command, view_url, wait_until_up


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent; this only picks the outgoing interface
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


@pytest.mark.slow
@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed (CI installs Debian's chromium)")
def test_ui_serves_on_loopback_and_shows_trials_with_auc_columns(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    trials = [{"params": {"method": m, "train": {"mix": "all"}}, "auc": AUC_EXAMPLE} for m in ("clr", "anomclr_plus")]
    exp_id = log_synthetic_study(uri, "ui_study", trials, tmp_path)
    port = free_port()
    with subprocess.Popen(ui_command(uri, port=port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
        try:
            wait_until_up("127.0.0.1", port, proc)
            assert listening_addresses(port) == {"127.0.0.1"}
            if (other := _non_loopback_address()) is not None:
                with pytest.raises(OSError):  # bound to loopback only
                    socket.create_connection((other, port), timeout=2).close()
            dom = render(view_url("127.0.0.1", port, exp_id), tmp_path / "ui.png")
        finally:
            proc.terminate()
    assert "trial 0" in dom and "trial 1" in dom
    for column in ("auc/ato4l", "auc/leptoquark", "auc/h_tautau", "auc/hc_taunu", "auc/mean"):
        assert column in dom, column
    assert (tmp_path / "ui.png").stat().st_size > 30_000
