"""The lab's configuration from the service's settings.

One function both the CLI (``hotline lab …``) and the demo call, so the agents, the AMI
address and the secret the lab renders are always the ones the service logs in with. It
lives apart from :mod:`hotline.cli` so :mod:`hotline.demo` needs nothing from the CLI.
"""

from __future__ import annotations

from dialplans.config import LabConfig
from hotline.settings import Settings

__all__ = ["lab_config"]


def lab_config(settings: Settings) -> LabConfig:
    return LabConfig.default(
        agents=settings.lab_agents,
        ami_host=settings.ami_host,
        ami_port=settings.ami_port,
        ami_user=settings.ami_user,
        ami_secret=settings.ami_secret.get_secret_value(),
    )
