"""A stand-in for `skein.Client`, because no YARN ResourceManager can run on these machines.

It runs each service's script as a local process in a container folder of its own, with
the service's files localized (archives unpacked, as YARN does), its environment set and
SKEIN_CONTAINER_ID defined, starting a service only after the services it depends on are
running. So the scheduler and worker commands that ordercast generates are proven to form a
working cluster; YARN itself (queues, resources, security) is not exercised.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse


class FakeSkeinClient:
    submitted: list = []

    def submit_and_connect(self, spec) -> FakeApplication:
        application = FakeApplication(spec, Path(tempfile.mkdtemp(prefix="fake-yarn-")))
        FakeSkeinClient.submitted.append(application)
        application.start()
        return application


class FakeApplication:
    def __init__(self, spec, root: Path) -> None:
        self.spec = spec
        self.root = root
        self.containers: dict[str, list[subprocess.Popen]] = {name: [] for name in spec.services}
        self.final_status: str | None = None

    def start(self) -> None:
        started: set[str] = set()
        while len(started) < len(self.spec.services):
            for name, service in self.spec.services.items():
                if name not in started and set(service.depends) <= started:
                    for index in range(service.instances):
                        self._launch(name, index)
                    time.sleep(1.0)  # YARN starts dependents once these containers are running
                    started.add(name)

    def _launch(self, name: str, index: int) -> None:
        service = self.spec.services[name]
        folder = self.root / f"{name}_{index}"
        folder.mkdir()
        for target, file in service.files.items():
            source = urlparse(file.source).path
            if str(file.type).lower().endswith("archive"):
                shutil.unpack_archive(source, folder / target)
            else:
                shutil.copy(source, folder / target)
        (folder / ".launch.sh").write_text(service.script)
        env = {**os.environ, **service.env, "SKEIN_CONTAINER_ID": f"{name}_{index}"}
        log = open(folder / "container.log", "wb")
        self.containers[name].append(subprocess.Popen(["bash", ".launch.sh"], cwd=folder, env=env, stdout=log,
                                                      stderr=subprocess.STDOUT, start_new_session=True))

    def scale(self, name: str, count: int) -> None:
        running = self.containers[name]
        while len(running) < count:
            self._launch(name, len(running))
        while len(running) > count:
            _stop(running.pop())

    def shutdown(self, status: str = "SUCCEEDED") -> None:
        for processes in self.containers.values():
            for process in processes:
                _stop(process)
        self.final_status = status


def _stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
