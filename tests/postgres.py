"""A real PostgreSQL server for the tests, run as a user would run one: its own data folder, a
loopback port, password authentication, and never as root (PostgreSQL refuses to). Debian's
`postgresql` package provides the programs (`.ci/run` installs it)."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from deployments.server import free_port

USER = "ordercast"
PASSWORD = "pg-Secret-4711"  # what the secrets tests look for in logs and records


def binaries() -> Path | None:
    """The newest installed PostgreSQL's programs folder, or None."""
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda path: int(Path(path).parent.name))
    if folders:
        return Path(folders[-1])
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class PostgresServer:
    port: int
    folder: Path
    bin: Path
    owner: pwd.struct_passwd | None  # the account the server runs as, when the tests run as root

    def url(self, database: str, *, driver: str = "psycopg", password: bool = True) -> str:
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql+{driver}://{USER}{secret}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new, empty database; returns its URL (with the password)."""
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, name,
                  env={"PGPASSWORD": PASSWORD})
        return self.url(name)

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, program: str, *args: str, env: dict[str, str] | None = None) -> None:
        command = [str(self.bin / program), *args]
        if self.owner is not None:
            command = ["runuser", "-u", self.owner.pw_name, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})},
                                cwd=self.folder)
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed: {result.stderr or result.stdout}")


def start() -> PostgresServer:
    """Initialise a data folder and start a server on a free loopback port."""
    bin_dir = binaries()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (Debian package postgresql; .ci/run installs it)")
    owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="ordercast-pg-"))
    (folder / "password").write_text(PASSWORD + "\n")
    if owner is not None:
        for path in (folder, folder / "password"):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    server = PostgresServer(free_port(), folder, bin_dir, owner)
    server._run("initdb", "-D", str(folder / "data"), "-U", USER, "--auth=scram-sha-256",
                f"--pwfile={folder / 'password'}", "-E", "UTF8", "--no-sync")
    options = f"-p {server.port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    server._run("pg_ctl", "-D", str(folder / "data"), "-o", options, "-l", str(folder / "server.log"), "-w", "start")
    return server
