"""The lab's endpoints hang up a party that vanished (docs/lab.md, "Cleaning up"): every PJSIP
endpoint gets ``rtp_timeout``, ``rtp_timeout_hold`` and RFC 4028 session timers, with the
values of :class:`~dialplans.config.LabConfig` (the e2e proof that such a call is
cleared is ``tests/e2e/test_cleanup.py``)."""

from __future__ import annotations

import re

from dialplans.config import LabConfig, render


def _endpoints(pjsip: str) -> dict[str, dict[str, str]]:
    """Every ``type = endpoint`` section of pjsip.conf (a name also has its aor and
    identify sections): its settings by key."""
    sections: list[tuple[str, dict[str, str]]] = []
    for line in pjsip.splitlines():
        line = line.split(";", 1)[0].strip()
        if match := re.fullmatch(r"\[([^\]]+)\]", line):
            sections.append((match[1], {}))
        elif "=" in line and sections:
            key, _, value = line.partition("=")
            sections[-1][1][key.strip()] = value.strip()
    return {n: s for n, s in sections if s.get("type") == "endpoint"}


def test_every_endpoint_gets_the_configured_timers() -> None:
    cfg = LabConfig.default(
        agents=3, rtp_timeout=12, rtp_timeout_hold=345, session_timers_expires=678
    )
    endpoints = _endpoints(render(cfg)["pjsip.conf"])
    assert {"trunk", "agent-1001", "agent-1002", "agent-1003"} <= set(endpoints)
    for name, settings in endpoints.items():
        assert settings.get("rtp_timeout") == "12", name
        assert settings.get("rtp_timeout_hold") == "345", name
        assert settings.get("timers") == "yes", name
        assert settings.get("timers_sess_expires") == "678", name


def test_the_defaults_clear_a_vanished_caller_within_a_minute() -> None:
    cfg = LabConfig.default()
    assert 0 < cfg.rtp_timeout <= 60
    assert cfg.rtp_timeout_hold >= cfg.rtp_timeout  # music on hold sends nothing back
    assert cfg.session_timers_expires >= 90  # RFC 4028 Min-SE


def test_the_timers_come_from_the_settings() -> None:
    from hotline.lab import lab_config
    from hotline.settings import load_settings

    settings = load_settings(
        lab_rtp_timeout=17, lab_rtp_timeout_hold=170, lab_session_timers_expires=1700
    )
    endpoints = _endpoints(render(lab_config(settings))["pjsip.conf"])
    assert endpoints
    for name, values in endpoints.items():
        assert (values["rtp_timeout"], values["rtp_timeout_hold"]) == ("17", "170"), name
        assert values["timers_sess_expires"] == "1700", name
