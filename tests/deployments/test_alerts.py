"""`ordercast deploy --notify URL`: Prefect automations on the real local server post to a
webhook receiver on 127.0.0.1 when a run of the market's deployments fails or stays Late."""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tests.helpers import run_cli


class Receiver:
    """A webhook endpoint on loopback that keeps the `text` of every JSON body posted to it."""

    def __init__(self) -> None:
        texts = self.texts = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                texts.append(json.loads(body)["text"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/ordercast-alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, fragment: str, seconds: float) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = [text for text in self.texts if fragment in text]
            if found:
                return found[0]
            time.sleep(0.5)
        raise AssertionError(f"no message with {fragment!r} within {seconds} s; got {self.texts}")


@pytest.fixture
def receiver():
    endpoint = Receiver()
    yield endpoint
    endpoint.server.shutdown()


def test_failed_and_late_runs_post_to_the_webhook(small_demo_dir, prefect_server, tmp_path, receiver):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Failed, Scheduled

    deployed = run_cli("deploy", "--pool", "ordercast-alert-test", "--orders", str(small_demo_dir / "orders.csv"),
                       "--regions", str(small_demo_dir / "regions.csv"), "--name", "alert-drill", "--timezone", "UTC",
                       "--out", str(tmp_path / "scheduled"), "--notify", receiver.url, "--late-minutes", "0.2",
                       env={"ORDERCAST_HOME": str(tmp_path / "home")})
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    assert f"Alerts: failed, crashed and late runs post to {receiver.url}" in deployed.stdout

    message = ("1 of 3 regions failed: berlin-mitte (fallback): train: InjectedFault. Repair: fix the cause, then "
               "press Retry on this run in the Prefect UI")
    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        with get_client(sync_client=True) as client:
            deployment = client.read_deployment_by_name("forecast/alert-drill")
            failing = client.create_flow_run_from_deployment(deployment.id)
            client.set_flow_run_state(failing.id, Failed(message=message), force=True)
            overdue = client.create_flow_run_from_deployment(deployment.id, state=Scheduled(
                scheduled_time=datetime.now(timezone.utc) - timedelta(minutes=1)))
            try:
                failed_text = receiver.wait_for(failing.name, seconds=60)
                late_text = receiver.wait_for(overdue.name, seconds=120)  # Late after 15 s, then 12 s unstarted
            finally:
                client.delete_flow_run(overdue.id)

    assert failed_text.startswith("ordercast alert-drill: run failed\n")
    assert f"{failing.name} of deployment alert-drill ended Failed: {message}" in failed_text
    assert f"Details: ordercast failures {failing.id}" in failed_text
    assert late_text.startswith("ordercast alert-drill: run late\n")
    assert f"{overdue.name} of deployment alert-drill is Late and has not started after 0.2 minutes" in late_text
    assert "(ordercast worker --pool ordercast-alert-test)" in late_text
    assert not any(failing.name in text for text in receiver.texts if text.startswith("ordercast alert-drill: run late"))


def test_notify_needs_an_http_url_and_your_own_tables(tmp_path):
    bad_url = run_cli("deploy", "--orders", "orders.csv", "--notify", "hooks.example.com/x")
    assert bad_url.returncode == 1 and "--notify: 'hooks.example.com/x' is not an http(s) URL" in bad_url.stderr
    demo = run_cli("deploy", "--data", str(tmp_path), "--notify", "http://127.0.0.1:9/x")
    assert demo.returncode == 1 and "--notify applies to the deployments of your own tables" in demo.stderr
