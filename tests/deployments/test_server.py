"""The local Prefect server helper: start, reuse, status, stop."""
from __future__ import annotations

import os
import urllib.request
from pathlib import Path

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


def test_prefect_cli_in_a_new_shell_reaches_the_server(tmp_path):
    """`ordercast server start` leaves an active `ordercast` profile in the user's Prefect profiles
    file: Prefect's own CLI, started from a shell that exported nothing, lists the server's runs."""
    import os
    import subprocess
    import sys
    import tomllib
    from pathlib import Path

    from prefect import flow
    from prefect.settings import PREFECT_API_URL, temporary_settings

    shell = {key: value for key, value in os.environ.items()
             if not key.startswith(("PREFECT_", "ORDERCAST_"))} | {"HOME": str(tmp_path), "COLUMNS": "250"}
    ordercast = [str(Path(sys.executable).with_name("ordercast"))]
    env = {**shell, "ORDERCAST_HOME": str(tmp_path / "home")}
    started = subprocess.run([*ordercast, "server", "start", "--port", str(server.free_port())], env=env,
                             capture_output=True, text=True, timeout=180)
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        assert "profile 'ordercast' is active" in started.stdout
        profiles = tomllib.loads((tmp_path / ".prefect" / "profiles.toml").read_text())
        api_url = profiles["profiles"]["ordercast"]["PREFECT_API_URL"]
        assert profiles["active"] == "ordercast" and server.healthy(api_url)

        @flow(name="seen-from-a-new-shell")
        def marker() -> None:
            pass

        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            state = marker(return_state=True)
        listed = subprocess.run([str(Path(sys.executable).with_name("prefect")), "flow-run", "ls"], env=shell,
                                capture_output=True, text=True, timeout=120)
        assert listed.returncode == 0, listed.stderr[-2000:]
        assert str(state.state_details.flow_run_id) in listed.stdout

        # a user who chose another profile keeps it, and is told how to switch
        (tmp_path / ".prefect" / "profiles.toml").write_text(
            'active = "mine"\n\n[profiles.mine]\nPREFECT_API_URL = "http://example.invalid/api"\n\n'
            f'[profiles.ordercast]\nPREFECT_API_URL = "{api_url}"\n')
        again = subprocess.run([*ordercast, "server", "start"], env=env, capture_output=True, text=True, timeout=180)
        assert again.returncode == 0 and "your active profile is 'mine'" in again.stdout
        assert "prefect profile use ordercast" in again.stdout
        assert tomllib.loads((tmp_path / ".prefect" / "profiles.toml").read_text())["active"] == "mine"
    finally:
        subprocess.run([*ordercast, "server", "stop"], env=env, capture_output=True, timeout=120)



def _servers_of(home: Path) -> list[int]:
    """Pids of the running `prefect server start` processes of an ordercast home."""
    marker = f"PREFECT_HOME={home / 'prefect'}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
            environment = (proc / "environ").read_bytes().split(b"\0")
        except OSError:  # not a process, or gone
            continue
        if b"server" in command and b"start" in command and marker in environment \
                and any(part.endswith(b"/prefect") for part in command):
            found.append(int(proc.name))
    return found


def test_a_server_that_takes_the_default_port_first_is_not_taken_for_this_homes(tmp_path, monkeypatch):
    """Another home's server binds the default port between this home's check and its server's
    bind (two homes starting at once): this home's server moves to a free port, and the other
    one's answers on the default port are not mistaken for its own."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Healthy(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"true")

        def log_message(self, *args):
            pass

    other = HTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    taken = other.server_address[1]
    checks = []
    real_port_free = server._port_free

    def port_free(port: int) -> bool:  # the first check ran before the other server bound
        checks.append(port)
        return len(checks) == 1 or real_port_free(port)

    monkeypatch.setattr(server, "DEFAULT_PORT", taken)
    monkeypatch.setattr(server, "_port_free", port_free)
    home = tmp_path / "home"
    try:
        info = server.start(home)
        assert info.port != taken and server.healthy(info.api_url) and server._listens(info.pid, info.port)
        assert server.healthy(f"http://127.0.0.1:{taken}/api")  # the other server still answers there
        assert checks[0] == taken
    finally:
        server.stop(home)
        other.shutdown()


def test_two_commands_starting_the_server_at_once_share_one(tmp_path):
    """Started at the same moment in a fresh home, both commands report the same server, and
    exactly one server process runs for that home (none left behind after the stop)."""
    import re
    import subprocess
    import sys

    home = tmp_path / "home"
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    env["ORDERCAST_HOME"] = str(home)
    command = [str(Path(sys.executable).with_name("ordercast")), "server", "start"]
    starts = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(2)]
    try:
        outputs = [process.communicate(timeout=240) for process in starts]
        assert [process.returncode for process in starts] == [0, 0], [err[-2000:] for _, err in outputs]
        reported = {re.search(r"API (\S+) \(pid (\d+)\)", out).groups() for out, _ in outputs}
        assert len(reported) == 1, reported
        assert _servers_of(home) == [int(next(iter(reported))[1])]
    finally:
        run_cli("server", "stop", env={"ORDERCAST_HOME": str(home)})
    assert _servers_of(home) == []

