"""The real forecast flow on a `distributed.SSHCluster` of three entries (scheduler and two
workers) logged in over a real OpenSSH server on a loopback port, as a separate Unix user
that cannot read this test's folders, the flow's $ORDERCAST_HOME, or /root. Only
`shared_dir` is shared, so anything that relies on the flow machine's private files fails.
"""
from __future__ import annotations

import os
import pwd
import shutil
import site
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from deployments.server import free_port
from tests.helpers import read_run, run_cli, table_args, ui_retry_drill

SSHD = Path("/usr/sbin/sshd")
SYSTEM_PYTHON = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
USER = "ordercast-ssh"
PROJECT = Path(__file__).resolve().parents[2]
AS_OF = "2026-10-19T00:00:00+00:00"

pytestmark = [
    pytest.mark.skipif(not SSHD.exists(), reason="sshd not installed (Debian package openssh-server; .ci/run installs it)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="creating the test's Unix user needs root"),
    pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason=f"{SYSTEM_PYTHON} is needed for the SSH user's Python"),
]


def run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True)


def ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        run("useradd", "--create-home", "--shell", "/bin/bash", USER)
        run("usermod", "-p", "*", USER)  # no password, but not locked: key login works without PAM
        return pwd.getpwnam(USER)


def worker_environment(folder: Path) -> Path:
    """A Python the SSH user can run: the system interpreter plus a hard-linked copy of the
    installed packages and of the project's code (the project's venv points into /root)."""
    env = folder / "env"
    run(str(SYSTEM_PYTHON), "-m", "venv", "--without-pip", str(env))
    target = env / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    shutil.rmtree(target)

    def link(source, destination):
        try:
            os.link(source, destination)
        except OSError:
            shutil.copy2(source, destination)

    shutil.copytree(site.getsitepackages()[0], target, copy_function=link, symlinks=True,
                    ignore=shutil.ignore_patterns("__editable__*", "__pycache__"))
    for package in ("forecasting", "tasks", "flows", "deployments"):
        shutil.copytree(PROJECT / package, target / package, ignore=shutil.ignore_patterns("__pycache__"))
    return env / "bin" / "python"


@pytest.fixture(scope="module")
def ssh_cluster_config(prefect_server):
    user = ensure_user()
    public = Path(tempfile.mkdtemp(prefix="ordercast-ssh-"))
    public.chmod(0o755)
    shared = public / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    private = Path(tempfile.mkdtemp(prefix="ordercast-sshd-"))  # 0700: keys and config, root only
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(private / "host_key"))
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(private / "client_key"))
    ssh_dir = Path(user.pw_dir) / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text((private / "client_key.pub").read_text())
    for path in (ssh_dir, ssh_dir / "authorized_keys"):
        os.chown(path, user.pw_uid, user.pw_gid)
    (ssh_dir / "authorized_keys").chmod(0o600)
    port = free_port()
    (private / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {private / 'host_key'}\nPidFile {private / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nUsePAM no\n"
        f"AllowUsers {USER}\nPermitRootLogin no\nStrictModes yes\nMaxStartups 50\nMaxSessions 50\n")
    host_key = (private / "host_key.pub").read_text().split()
    (private / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    Path("/run/sshd").mkdir(exist_ok=True)
    sshd = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(private / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=open(private / "sshd.log", "wb"))
    python = worker_environment(public)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        probe = subprocess.run(["ssh", "-p", str(port), "-i", str(private / "client_key"), "-o", "BatchMode=yes",
                                "-o", f"UserKnownHostsFile={private / 'known_hosts'}", f"{USER}@127.0.0.1",
                                str(python), "-c", "'import forecasting, distributed, prefect, xgboost'"],
                               capture_output=True, text=True)
        if probe.returncode == 0:
            break
        time.sleep(0.5)
    else:
        sshd.kill()
        pytest.fail(f"cannot log in over ssh: {probe.stderr}\n{(private / 'sshd.log').read_text()}")
    config = private / "ssh.yaml"
    config.write_text(
        f"kind: ssh\nhosts: [127.0.0.1, 127.0.0.1, 127.0.0.1]\n"
        f"connect:\n  username: {USER}\n  port: {port}\n  client_keys: [{private / 'client_key'}]\n"
        f"  known_hosts: {private / 'known_hosts'}\n"
        f"worker_options:\n  nthreads: 1\n"
        f"remote_python: {python}\napi_url: {prefect_server.api_url}\nshared_dir: {shared}\n")
    yield config, shared, user
    sshd.terminate()
    sshd.wait(timeout=10)
    subprocess.run(["pkill", "-u", USER], check=False)
    shutil.rmtree(public, ignore_errors=True)
    shutil.rmtree(private, ignore_errors=True)


def test_forecast_on_an_ssh_cluster_matches_a_local_run(ssh_cluster_config, small_demo_dir, tmp_path):
    config, shared, user = ssh_cluster_config
    common = [*table_args(small_demo_dir), "--horizon-days", "7", "--as-of", AS_OF]
    local = run_cli("forecast", *common, "--out", str(tmp_path / "local"))
    assert local.returncode == 0, local.stderr[-3000:]
    remote = run_cli("forecast", *common, "--out", str(tmp_path / "ssh"), "--cluster", str(config),
                     umask=0o000)  # the flow (root) and the workers (another user) both write shared_dir
    assert remote.returncode == 0, remote.stderr[-4000:]
    run_record = read_run(tmp_path / "ssh")
    assert run_record["cluster"]["kind"] == "ssh" and run_record["cluster"]["workers"] == 2
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "ssh" / "forecasts.parquet").drop(columns=["run_id", "created_at"]),
        pd.read_parquet(tmp_path / "local" / "forecasts.parquet").drop(columns=["run_id", "created_at"]),
        rtol=1e-9)
    models = [p for p in (shared / "models").rglob("meta.json")]
    assert len(models) == 3 and all(p.stat().st_uid == user.pw_uid for p in models)  # trained on the SSH workers


def test_ordercast_retry_on_the_ssh_cluster_reruns_only_the_failed_region(ssh_cluster_config, small_demo_dir,
                                                                            prefect_server, tmp_path):
    """The UI-retry drill with the deployment's tasks on the SSH workers, retried with `ordercast
    retry` (the same AwaitingRetry as the UI's button): the other regions' stored results are read
    back from `shared_dir`, where those workers (another Unix user) wrote them."""
    config, shared, user = ssh_cluster_config
    ui_retry_drill(small_demo_dir, prefect_server.api_url, tmp_path, pool="ordercast-ssh-retry-test",
                   cluster_file=config, umask=0o000, with_cli=True)
    stored = [path for path in (shared / "results").rglob("*") if path.is_file()]
    assert stored and any(path.stat().st_uid == user.pw_uid for path in stored)  # written on the SSH workers
