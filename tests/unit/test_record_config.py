"""The rendered configuration that makes Asterisk write its own record.

Files always (cel_custom's CSV, the queue_log file); with a record database also
cel_pgsql and the realtime queue_log, both at once (docs/asterisk-record.md). The
record database's password is rendered into the two files that need it and nowhere
else, and never shows in a repr.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dialplans.config import CEL_CSV_FIELDS, CEL_CSV_FILE, LabConfig, RecordDB, render
from hotline.lab import lab_config, record_db
from hotline.settings import load_settings

LAB_MODULES = Path("/var/lib/hotline/sid-root/usr/lib/x86_64-linux-gnu/asterisk/modules")
DB = RecordDB(host="db.internal", port=5433, name="calls", user="asterisk", password="s3cr;t")
NEEDED_EVENTS = {
    "CHAN_START",
    "CHAN_END",
    "ANSWER",
    "HANGUP",
    "APP_START",
    "APP_END",
    "BRIDGE_ENTER",
    "BRIDGE_EXIT",
    "USER_DEFINED",
    "LINKEDID_END",
    "BLINDTRANSFER",
    "ATTENDEDTRANSFER",
    "PICKUP",
    "LOCAL_OPTIMIZE",
}


def _loads(modules_conf: str) -> list[str]:
    return re.findall(r"^load => (\S+)$", modules_conf, flags=re.M)


def _settings(text: str) -> dict[str, str]:
    return dict(
        (key.strip(), value.strip())
        for key, _, value in (
            line.partition("=") for line in text.splitlines() if "=" in line and line[:1] != ";"
        )
    )


def test_files_only_without_a_record_database() -> None:
    files = render(LabConfig.default())
    cel = _settings(files["cel.conf"])
    assert cel["enable"] == "yes"
    assert set(cel["events"].split(",")) == NEEDED_EVENTS
    assert {"queue", "dial", "agi"} <= set(cel["apps"].split(","))
    assert "dateformat" not in cel  # cel_custom then writes epoch.microseconds
    loads = _loads(files["modules.conf"])
    for module in ("res_cdrel_custom.so", "cel_custom.so", "app_celgenuserevent.so", "func_uri.so"):
        assert module in loads
    assert "cel_pgsql.so" not in loads
    assert "res_config_pgsql.so" not in loads
    assert "queue_log =>" not in files["extconfig.conf"]
    assert "password" not in files["cel_pgsql.conf"]
    logger = _settings(files["logger.conf"])
    assert logger["queue_log"] == "yes"
    assert logger["queue_log_to_file"] == "yes"


def test_both_backends_at_once_with_a_record_database() -> None:
    files = render(LabConfig.default(record_db=DB))
    loads = _loads(files["modules.conf"])
    assert {"cel_custom.so", "cel_pgsql.so", "res_config_pgsql.so"} <= set(loads)
    pgsql = _settings(files["cel_pgsql.conf"])
    assert pgsql["hostname"] == "db.internal"
    assert pgsql["port"] == "5433"
    assert pgsql["dbname"] == "calls"
    assert pgsql["table"] == "cel"
    assert pgsql["usegmtime"] == "yes"  # the table's times are UTC
    assert pgsql["show_user_defined"] == "yes"  # eventtype USER_DEFINED, name in userdeftype
    assert pgsql["password"] == r"s3cr\;t"  # ';' would start a comment
    res = _settings(files["res_pgsql.conf"])
    assert (res["dbhost"], res["dbname"], res["dbpass"]) == ("db.internal", "calls", r"s3cr\;t")
    assert re.search(r"^queue_log => pgsql,general,queue_log$", files["extconfig.conf"], re.M)
    logger = _settings(files["logger.conf"])
    assert logger["queue_log_to_file"] == "yes"  # the file stays: live/queue_log.py reads it
    assert logger["queue_log_realtime_use_gmt"] == "yes"
    assert logger["queue_adaptive_realtime"] == "yes"
    # the password is in those two files only
    assert [name for name, text in files.items() if "s3cr" in text] == [
        "cel_pgsql.conf",
        "res_pgsql.conf",
    ]


def test_the_csv_mapping_is_the_one_the_ingester_reads() -> None:
    conf = render(LabConfig.default())["cel_custom.conf"]
    assert f"[{CEL_CSV_FILE}]" in conf
    settings = _settings(conf)
    assert settings["format"] == "dsv"  # 22.10: "dsv" or "json"; "csv" declines to load
    assert settings["quoting_method"] == "all"
    assert settings["fields"].split(",") == [field for _column, field in CEL_CSV_FIELDS]


def test_every_queue_result_also_goes_into_cel() -> None:
    dialplan = render(LabConfig.default())["extensions.conf"].splitlines()
    results = [i for i, line in enumerate(dialplan) if ",UserEvent(QueueResult," in line]
    assert len(results) == 1 + len(LabConfig.default().queues)
    for i in results:
        cel = dialplan[i + 1]
        assert "CELGenUserEvent(QueueResult," in cel
        for key in ("queue=", "status=${QUEUESTATUS}", "member=", "membername="):
            assert key in cel
        assert "${URIENCODE(${MEMBERNAME})}" in cel  # a name may hold '&' or ','


def test_every_loaded_module_exists_in_the_lab() -> None:
    if not LAB_MODULES.is_dir():
        pytest.skip(f"no lab chroot at {LAB_MODULES}")
    present = {p.name for p in LAB_MODULES.iterdir()}
    loads = _loads(render(LabConfig.default(record_db=DB))["modules.conf"])
    assert [m for m in loads if m not in present] == []


def test_the_password_stays_out_of_reprs_and_line_breaks_are_refused() -> None:
    assert "s3cr" not in repr(DB)
    assert "s3cr" not in repr(LabConfig.default(record_db=DB))
    with pytest.raises(ValueError, match="single-line"):
        RecordDB(password="x\nload => evil.so")


def test_the_record_database_comes_from_the_settings() -> None:
    pg = "postgresql://asterisk:pw@10.0.0.5:6432/calls"
    assert record_db(pg) == RecordDB("10.0.0.5", 6432, "calls", "asterisk", "pw")
    assert record_db(None) is None
    # default: the service's own database when it is PostgreSQL, else files only
    assert lab_config(load_settings(database_url=pg)).record_db == record_db(pg)
    assert lab_config(load_settings(database_url="sqlite:///x.db")).record_db is None
    own = "postgresql://u@h/record"
    settings = load_settings(database_url="sqlite:///x.db", record_url=own)
    assert lab_config(settings).record_db == record_db(own)
