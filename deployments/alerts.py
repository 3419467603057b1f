"""Alerts the Prefect way: automations on the Prefect server that post to a webhook when a run
of the market's deployments ends Failed or Crashed, or is Late and has not started for too long.

The message names the run, the flow run's own state message (for a failed forecast: the failed
regions, their errors and the repair) and the command that shows the details. Installing again
replaces the market's automations and webhook block, so a changed URL takes effect.
"""
from __future__ import annotations

from datetime import timedelta

LATE_AFTER = timedelta(minutes=30)
FAILED_BODY = (
    "{{ flow_run.name }} of deployment {{ deployment.name }} ended {{ flow_run.state.name }}: "
    "{{ flow_run.state.message }}\nDetails: ordercast failures {{ flow_run.id }}"
)
LATE_BODY = (
    "{{ flow_run.name }} of deployment {{ deployment.name }} is Late and has not started after "
    "{{ late_minutes }} minutes: is a worker polling its work pool? (ordercast worker --pool {{ pool }})"
)


def install_alerts(deployments: list[str], url: str, market: str, pool: str,
                   late_after: timedelta = LATE_AFTER) -> list[str]:
    """Point the failed- and late-run automations of `deployments` ("flow/name", on work pool
    `pool`) at the webhook `url`; returns the automations' names."""
    from prefect.automations import Automation
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import get_client
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import EventTrigger, Posture

    block = CustomWebhookNotificationBlock(name=f"ordercast {market}", url=url,
                                           json_data={"text": "{{ subject }}\n{{ body }}"})
    block_id = block.save(f"ordercast-{_slug(market)}-alerts", overwrite=True)
    with get_client(sync_client=True) as client:
        ids = [client.read_deployment_by_name(name).id for name in deployments]
    runs_of_these = {"prefect.resource.id": "prefect.flow-run.*"}
    related = {"prefect.resource.role": "deployment",
               "prefect.resource.id": [f"prefect.deployment.{deployment_id}" for deployment_id in ids]}
    late_minutes = f"{late_after / timedelta(minutes=1):g}"
    automations = [
        Automation(
            name=f"ordercast {market}: run failed",
            description=f"A run of {', '.join(deployments)} ended Failed or Crashed",
            trigger=EventTrigger(expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}, match=runs_of_these,
                                 match_related=related, posture=Posture.Reactive, threshold=1, within=timedelta(0)),
            actions=[SendNotification(block_document_id=block_id, subject=f"ordercast {market}: run failed",
                                      body=FAILED_BODY)],
        ),
        Automation(
            name=f"ordercast {market}: run late",
            description=f"A run of {', '.join(deployments)} is Late and has not started for {late_minutes} minutes",
            trigger=EventTrigger(after={"prefect.flow-run.Late"},
                                 expect={"prefect.flow-run.Pending", "prefect.flow-run.Running",
                                         "prefect.flow-run.Cancelled", "prefect.flow-run.Cancelling"},
                                 for_each={"prefect.resource.id"}, match=runs_of_these, match_related=related,
                                 posture=Posture.Proactive, threshold=1, within=late_after),
            actions=[SendNotification(block_document_id=block_id, subject=f"ordercast {market}: run late",
                                      body=LATE_BODY.replace("{{ late_minutes }}", late_minutes)
                                      .replace("{{ pool }}", pool))],
        ),
    ]
    for automation in automations:
        _replace(automation)
    return [automation.name for automation in automations]


def _replace(automation) -> None:
    """Create the automation, deleting an earlier one of the same name first."""
    from prefect.automations import Automation

    try:
        Automation.read(name=automation.name).delete()
    except ValueError:  # none of that name yet
        pass
    automation.create()


def _slug(text: str) -> str:
    """A block name: lowercase letters, digits and dashes."""
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-") or "market"
