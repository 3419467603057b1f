"""The local Prefect server helper: start, reuse, status, stop."""
from __future__ import annotations

import urllib.request

from deployments import server
from tests.helpers import run_cli


def test_start_reuse_status_stop(tmp_path):
    home = tmp_path / "home"
    port = server.free_port()
    info = server.start(home, port=port)
    try:
        assert info.ui_url == f"http://127.0.0.1:{port}" and server.healthy(info.api_url)
        assert (home / "prefect" / "prefect.db").exists()  # its database lives under $ORDERCAST_HOME
        assert server.start(home) == info  # reused, not started twice
        status = run_cli("server", "status", env={"ORDERCAST_HOME": str(home)})
        assert status.returncode == 0 and f"http://127.0.0.1:{port}" in status.stdout
        with urllib.request.urlopen(f"{info.ui_url}/api/health", timeout=5) as response:
            assert response.status == 200
    finally:
        stopped = run_cli("server", "stop", env={"ORDERCAST_HOME": str(home)})
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not server.healthy(info.api_url)
    after = run_cli("server", "status", env={"ORDERCAST_HOME": str(home)})
    assert after.returncode == 3 and "not running" in after.stdout
