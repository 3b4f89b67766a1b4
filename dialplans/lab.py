"""The Asterisk lab: a real Asterisk 22 in a Debian sid chroot, on loopback only.

Debian bookworm ships Asterisk nowhere, sid ships 22; a minbase chroot gives us the
real thing in about a minute and is cached outside the clone (``HOTLINE_LAB_ROOT``),
so CI and developers pay for it once per machine. Asterisk runs as root inside the
chroot because the chroot's ``asterisk`` uid is some other user's uid on the host.

The lab is controlled through files and signals only (a PID file, a state file with
the config fingerprint) so ``hotline lab up`` is idempotent across processes: a second
``up`` with the same configuration reuses the running Asterisk.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dialplans.config import CEL_CSV_DIR, CEL_CSV_FILE, QUEUE_LOG_FILE, LabConfig, render

log = logging.getLogger(__name__)

ASTERISK = "/usr/sbin/asterisk"
PACKAGES = "asterisk,asterisk-core-sounds-en"
OBSOLETE_SAMPLES = ("users.conf",)
# Asterisk started with -U root drops every capability but CAP_NET_ADMIN, so even root
# cannot read files it does not own: everything Asterisk reads or writes is chowned to root.
ROOT_OWNED_DIRS = (
    "etc/asterisk",
    "var/run/asterisk",
    "var/log/asterisk",
    "var/spool/asterisk",
    "var/lib/asterisk",
    "var/cache/asterisk",
)


class LabError(RuntimeError):
    """The lab cannot be provisioned or started; the message says what to do."""


@dataclass(slots=True)
class LabStatus:
    provisioned: bool
    running: bool
    pid: int | None
    ami_ready: bool
    fingerprint: str | None
    version: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "provisioned": self.provisioned,
            "running": self.running,
            "pid": self.pid,
            "ami_ready": self.ami_ready,
            "fingerprint": self.fingerprint,
            "version": self.version,
        }


class Lab:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- files ---------------------------------------------------------------------
    @property
    def _pid_file(self) -> Path:
        return self.root / "var/run/hotline-lab.pid"

    @property
    def _state_file(self) -> Path:
        return self.root / "var/run/hotline-lab.json"

    @property
    def console_log(self) -> Path:
        return self.root / "var/log/asterisk/hotline-console.log"

    @property
    def provisioned(self) -> bool:
        return (self.root / ASTERISK.lstrip("/")).exists()

    # -- provisioning --------------------------------------------------------------
    def provision(self, say: Callable[[str], None] = log.info) -> None:
        """Build the sid chroot unless it is already there (about a minute)."""
        if self.provisioned:
            return
        if os.geteuid() != 0:
            raise LabError("provisioning the lab needs root (debootstrap and chroot)")
        debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
        if not Path(debootstrap).exists():
            raise LabError("debootstrap is missing: apt-get install debootstrap")
        staging = self.root.with_name(self.root.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.parent.mkdir(parents=True, exist_ok=True)
        say(f"provisioning Debian sid + Asterisk into {self.root} (about a minute)")
        cmd = [debootstrap, "--variant=minbase", f"--include={PACKAGES}", "sid", str(staging)]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
            raise LabError(f"debootstrap failed ({result.returncode}):\n{tail}")
        staging.rename(self.root)
        say("lab provisioned")

    def asterisk_version(self) -> str | None:
        if not self.provisioned:
            return None
        result = subprocess.run(
            ["chroot", str(self.root), ASTERISK, "-V"], capture_output=True, text=True, check=False
        )
        return result.stdout.strip() or None

    def install_config(self, config: LabConfig) -> None:
        etc = self.root / "etc/asterisk"
        etc.mkdir(parents=True, exist_ok=True)
        for name, text in render(config).items():
            (etc / name).write_text(text, encoding="utf-8")
        for name in OBSOLETE_SAMPLES:  # shipped samples that only add warnings
            (etc / name).unlink(missing_ok=True)
        for rel in ROOT_OWNED_DIRS:
            path = self.root / rel
            path.mkdir(parents=True, exist_ok=True)
            _chown_tree_root(path)

    # -- process -------------------------------------------------------------------
    def pid(self) -> int | None:
        try:
            pid = int(self._pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) else None

    def _state(self) -> dict[str, object]:
        try:
            state = json.loads(self._state_file.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    @property
    def log_dir(self) -> Path:
        """Asterisk's log dir on the host: the queue_log and the CEL CSV (the file mode)."""
        return self.root / "var/log/asterisk"

    @property
    def cel_file(self) -> Path:
        """cel_custom's CSV, one line per CEL event (dialplans/templates/cel_custom.conf)."""
        return self.log_dir / CEL_CSV_DIR / CEL_CSV_FILE

    def up(
        self, config: LabConfig, *, timeout: float = 60.0, say: Callable[[str], None] = log.info
    ) -> int:
        """Start Asterisk with ``config`` (provisioning first if needed) and wait for FullyBooted.

        Reuses a running lab whose configuration fingerprint matches; restarts it otherwise.
        """
        self.provision(say)
        fingerprint = config.fingerprint()
        pid = self.pid()
        if pid is not None:
            if self._state().get("fingerprint") == fingerprint and ami_ready(config, timeout=5):
                say(f"lab already running (pid {pid})")
                return pid
            say("lab configuration changed: restarting Asterisk")
            self.down()
        _ensure_ports_free(config)
        self.install_config(config)
        self.console_log.parent.mkdir(parents=True, exist_ok=True)
        self._provision_record()
        with open(self.console_log, "ab") as out:
            proc = subprocess.Popen(
                ["chroot", str(self.root), ASTERISK, "-f", "-U", "root", "-G", "root"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._pid_file.write_text(str(proc.pid))
        self._state_file.write_text(json.dumps({"fingerprint": fingerprint, "pid": proc.pid}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LabError(
                    f"Asterisk exited with {proc.returncode} at start; see {self.console_log}"
                )
            if ami_ready(config, timeout=min(5.0, max(0.5, deadline - time.monotonic()))):
                say(f"Asterisk up (pid {proc.pid}), AMI on {config.ami_host}:{config.ami_port}")
                return proc.pid
            time.sleep(0.2)
        self.down()
        raise LabError(f"Asterisk did not report FullyBooted within {timeout:.0f} s")

    def down(self, timeout: float = 15.0) -> bool:
        """Stop the lab's Asterisk by its PID; True if one was running."""
        pid = self.pid()
        if pid is None:
            self._pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        self._pid_file.unlink(missing_ok=True)
        self._state_file.unlink(missing_ok=True)
        return True

    def status(self, config: LabConfig) -> LabStatus:
        pid = self.pid()
        return LabStatus(
            provisioned=self.provisioned,
            running=pid is not None,
            pid=pid,
            ami_ready=pid is not None and ami_ready(config, timeout=3),
            fingerprint=str(self._state().get("fingerprint")) if pid else None,
            version=self.asterisk_version(),
        )

    def cli(self, command: str) -> str:
        """Run an Asterisk CLI command through the remote console (``asterisk -rx``)."""
        result = subprocess.run(
            ["chroot", str(self.root), ASTERISK, "-rx", command],
            capture_output=True,
            text=True,
            check=False,
            timeout=20,
        )
        return result.stdout

    def queue_log(self) -> Path:
        return self.log_dir / QUEUE_LOG_FILE

    def _provision_record(self) -> None:
        """The files Asterisk appends its record to, there before it starts.

        cel_custom opens its file for each event and logs an error (the event is lost)
        when the directory is missing: the chroot's package does not create it.
        """
        self.cel_file.parent.mkdir(parents=True, exist_ok=True)
        for path in (self.cel_file, self.queue_log()):
            path.touch(exist_ok=True)
        _chown_tree_root(self.cel_file.parent)


def ami_ready(config: LabConfig, timeout: float = 5.0) -> bool:
    """Log in over plain TCP and wait for FullyBooted: the only proof Asterisk is serving."""
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((config.ami_host, config.ami_port), timeout=timeout) as sock:
            sock.sendall(
                (
                    f"Action: Login\r\nUsername: {config.ami_user}\r\n"
                    f"Secret: {config.ami_secret}\r\nEvents: system\r\n\r\n"
                ).encode()
            )
            buf = b""
            while time.monotonic() < deadline:
                sock.settimeout(max(0.05, deadline - time.monotonic()))
                chunk = sock.recv(65536)
                if not chunk:
                    return False
                buf += chunk
                if b"Event: FullyBooted" in buf:
                    sock.sendall(b"Action: Logoff\r\n\r\n")
                    return True
                if b"Response: Error" in buf:
                    return False
    except OSError:
        return False
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie of ours is not alive
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return False


def _chown_tree_root(path: Path) -> None:
    if os.geteuid() != 0:
        return
    for dirpath, dirnames, filenames in os.walk(path):
        os.lchown(dirpath, 0, 0)
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), 0, 0)


def _ensure_ports_free(config: LabConfig) -> None:
    """Fail early and clearly if something else holds the AMI or SIP port."""
    checks = (
        (socket.SOCK_STREAM, config.ami_port, "AMI"),
        (socket.SOCK_DGRAM, config.sip_port, "SIP"),
    )
    for kind, port, what in checks:
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((config.ami_host if what == "AMI" else config.sip_host, port))
            except OSError as exc:
                raise LabError(
                    f"{what} port {port} is taken ({exc}); is another Asterisk running?"
                ) from None
