"""One local Prefect server per `$ORDERCAST_HOME`, shared by the flow process and every
Dask worker (Prefect's ephemeral mode would start one server per worker process).

The server binds 127.0.0.1, keeps its database under `$ORDERCAST_HOME/prefect` (SQLite) or in
the PostgreSQL database `ordercast server start --database URL` named, and is reused while it
answers. Its pid and URL are kept in `$ORDERCAST_HOME/server.json`.
`ensure_api` also keeps an `ordercast` profile in the user's Prefect profiles file pointing at
the server, so that Prefect's own CLI finds it from any shell. This module must not import
Prefect at import time: the environment it sets has to be in place first.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil
from filelock import FileLock

from forecasting.errors import OrdercastError
from forecasting.settings import ordercast_home

DEFAULT_PORT = 4200
START_TIMEOUT_SECONDS = 90
LOCK_FILE = "server.lock"  # held while the server of a home is started or stopped
DATABASE_FILE = "server-database"  # the server's PostgreSQL URL, when it does not use SQLite
PROFILE = "ordercast"
_USER_PREFECT_HOME = os.environ.get("PREFECT_HOME")  # before ordercast points PREFECT_HOME at its own home


@dataclass(frozen=True)
class ServerInfo:
    pid: int | None
    port: int
    ui_url: str

    @property
    def api_url(self) -> str:
        return f"{self.ui_url}/api"


def prefect_environment(home: Path) -> dict[str, str]:
    """Settings every ordercast process shares: Prefect's files under `$ORDERCAST_HOME`, no telemetry."""
    return {
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }


def _state_file(home: Path) -> Path:
    return home / "server.json"


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def status(home: Path | None = None) -> ServerInfo | None:
    """The running server recorded for this home, or None."""
    home = home or ordercast_home()
    try:
        info = ServerInfo(**json.loads(_state_file(home).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return info if healthy(info.api_url) else None


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(home: Path | None = None, port: int | None = None, host: str = "127.0.0.1",
          database: str | None = None) -> ServerInfo:
    """Start the local server, or return the one already running for this home.

    `host` 0.0.0.0 (or a machine address) serves workers on other machines: anyone who can
    reach that port can then read and change every flow run, deployment and log of it.
    `database` (a PostgreSQL URL, without its password: PGPASSWORD or ~/.pgpass gives it) is
    kept for the home, so every later start, by any command, uses it again.
    """
    home = home or ordercast_home()
    home.mkdir(parents=True, exist_ok=True)
    with FileLock(home / LOCK_FILE, timeout=START_TIMEOUT_SECONDS + 30):  # one server per home, even when
        # two commands start it at once: the second waits, then finds the first one's server
        return _start_locked(home, port, host, database)


def server_database(url: str) -> str:
    """The asyncpg URL the Prefect server needs, from any PostgreSQL URL."""
    scheme, _, rest = url.partition("://")
    if not rest or scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise OrdercastError(f"server: --database takes a PostgreSQL URL (postgresql://user@host:port/db), got "
                             f"'{url}'")
    return f"postgresql+asyncpg://{rest}"


def _start_locked(home: Path, port: int | None, host: str, database: str | None) -> ServerInfo:
    running = status(home)
    chosen = home / DATABASE_FILE
    if database:
        database = server_database(database)
        if running and recorded_database(home) != database:
            raise OrdercastError(f"server: the server of {home} is running on another database; stop it first "
                                 "(ordercast server stop)")
        chosen.write_text(database + "\n")
    if running:
        return running
    database = recorded_database(home)
    if port is not None:
        if not _port_free(port):
            raise OrdercastError(f"server: port {port} on 127.0.0.1 is in use; pick another with --port")
        info = _launch(home, port, host, database)
    else:
        # another home's server can take the default port between the check and the bind (two
        # commands starting at once): then the next free port
        info = _launch(home, DEFAULT_PORT, host, database) if _port_free(DEFAULT_PORT) else None
        info = info or _launch(home, free_port(), host, database)
    if info is None:
        raise OrdercastError(f"server: Prefect server could not bind its port; see {home / 'logs' / 'prefect-server.log'}")
    _state_file(home).write_text(json.dumps(info.__dict__))
    return info


def _launch(home: Path, port: int, host: str, database: str | None) -> ServerInfo | None:
    """Start a Prefect server on `port` and wait until it answers there; None when it exited
    because another process holds the port (whose answers are not taken for its own)."""
    (home / "logs").mkdir(parents=True, exist_ok=True)
    log_path = home / "logs" / "prefect-server.log"
    prefect = Path(sys.executable).with_name("prefect")
    command = [str(prefect), "server", "start", "--host", host, "--port", str(port), "--analytics-off"]
    env = {**os.environ, **prefect_environment(home)}
    # Deleting a flow run (ordercast prune) leaves its logs and artifacts behind: Prefect's
    # database vacuum removes such orphans once a day when asked to, and old events always.
    env.setdefault("PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED", "events,orphans")
    if database:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database
    env.pop("PREFECT_API_URL", None)
    env.pop("PREFECT_PROFILES_PATH", None)  # the user's profiles (and their API URL) are not the server's
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    info = ServerInfo(process.pid, port, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not (_listens(process.pid, port) and healthy(info.api_url)):
        if process.poll() is not None:
            if not _port_free(port):
                return None
            raise OrdercastError(f"server: Prefect server exited with code {process.returncode}; see {log_path}")
        if time.monotonic() > deadline:
            _terminate(process.pid)
            raise OrdercastError(f"server: Prefect server did not answer within {START_TIMEOUT_SECONDS} s; see {log_path}")
        time.sleep(0.5)
    return info


def _listens(pid: int, port: int) -> bool:
    """Whether the process `pid`, or a process it started, listens on `port`."""
    try:
        root = psutil.Process(pid)
        return any(connection.status == psutil.CONN_LISTEN and connection.laddr.port == port
                   for process in (root, *root.children(recursive=True))
                   for connection in process.net_connections(kind="tcp"))
    except psutil.Error:
        return False


def recorded_database(home: Path) -> str | None:
    """The PostgreSQL database this home's server keeps its runs in; None: SQLite under the home."""
    try:
        return (home / DATABASE_FILE).read_text().strip() or None
    except OSError:
        return None


def stop(home: Path | None = None) -> bool:
    """Stop the recorded server; False if none was running."""
    home = home or ordercast_home()
    if not home.is_dir():
        return False
    with FileLock(home / LOCK_FILE, timeout=START_TIMEOUT_SECONDS + 30):
        state = _state_file(home)
        try:
            info = ServerInfo(**json.loads(state.read_text()))
        except (OSError, ValueError, TypeError):
            return False
        stopped = _terminate(info.pid) if info.pid else False
        state.unlink(missing_ok=True)
        return stopped


def _terminate(pid: int, grace_seconds: float = 5.0) -> bool:
    """SIGTERM the server's process group, then SIGKILL what is left."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return False
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True


def ensure_api(home: Path | None = None) -> tuple[str, str]:
    """Point this process (and the Dask workers it starts) at one Prefect API.

    Uses `PREFECT_API_URL` when set, else starts or reuses the local server. Returns the API
    URL and the UI URL. Call before importing Prefect.
    """
    home = home or ordercast_home()
    for key, value in prefect_environment(home).items():
        os.environ.setdefault(key, value)
    given = os.environ.get("PREFECT_API_URL")
    if given:
        if not healthy(given.rstrip("/")):
            raise OrdercastError(f"PREFECT_API_URL={given} does not answer; start that server or unset the variable")
        given = given.rstrip("/")
        return given, given.removesuffix("/api")
    info = start(home)
    os.environ["PREFECT_API_URL"] = info.api_url
    point_prefect_cli(info.api_url)
    return info.api_url, info.ui_url


def user_profiles_path() -> Path:
    """The profiles file Prefect's own CLI reads in the user's shell."""
    explicit = os.environ.get("PREFECT_PROFILES_PATH")
    if explicit:
        return Path(explicit).expanduser()
    return Path(_USER_PREFECT_HOME or "~/.prefect").expanduser() / "profiles.toml"


def point_prefect_cli(api_url: str) -> str | None:
    """Keep a Prefect profile named `ordercast` with this server's API URL in the user's profiles
    file, so that `prefect flow-run ls` in a new shell talks to it, and make it the active profile
    unless the user chose another. Returns that other profile's name, if any. Imports Prefect:
    call once the environment is set."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_PROFILES_PATH,
        Profile,
        load_profiles,
        save_profiles,
        temporary_settings,
    )

    with temporary_settings(updates={PREFECT_PROFILES_PATH: user_profiles_path()}):
        profiles = load_profiles(include_defaults=False)
        current = profiles.profiles_by_name.get(PROFILE)
        if current and current.settings.get(PREFECT_API_URL) == api_url and profiles.active_name == PROFILE:
            return None
        if current:
            profiles.update_profile(PROFILE, {PREFECT_API_URL: api_url})
        else:
            profiles.add_profile(Profile(name=PROFILE, settings={PREFECT_API_URL: api_url}))
        other = profiles.active_name not in (None, "ephemeral", PROFILE)
        if not other:
            profiles.set_active(PROFILE)
        save_profiles(profiles)
        return profiles.active_name if other else None
