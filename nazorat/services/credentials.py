"""Per-device MQTT credentials for Mosquitto: a password file and an ACL.

Passwords are stored the way ``mosquitto_passwd`` stores them (PBKDF2-SHA512,
``user:$7$<iterations>$<salt>$<hash>``), written by Python so no extra binary is
needed. Each device's username is its device id; the ACL lets it publish only under
that id.

Client ids are tied to logins. Our broker runs with ``use_username_as_clientid true``
(deploy/mosquitto/mosquitto.conf.template): whatever client id a client sends, its
session is the one named by its username. So a device that logs in with its own
password and the engine's client id gets its *own* session, and can neither take over
the engine's persistent session (whose queued QoS 1 fixes the ACL would then drop) nor
kick another device off. The engine's session is reachable only with an engine
account's password.

Service accounts: ``nazorat-engine`` (the default ingest worker, used by ``nazorat
run``) and one account per further worker on a shared subscription,
``nazorat-engine-<worker>`` (``nazorat devices credentials --engine nazorat-engine-2``),
because on our broker the account *is* the session: two workers on one account would
share one session and take it from each other. ``nazorat serve --client-id`` still
names the session on brokers that honour client ids; on ours the account name does.

Names the store refuses (``AccountNameError``): a device id must match the wire
format's ``^[A-Za-z0-9_.:-]{1,64}$``, must not be ``.`` or ``..``, and must not start
with the reserved prefix ``nazorat-`` (any case; the service accounts live there) or
``$``. So ``nazorat devices credentials nazorat-engine`` cannot overwrite the engine's
password.

Reload: the broker we start records its PID in ``broker.pid`` in this folder;
``reload_broker`` sends that process SIGHUP (after checking it is still our mosquitto)
so ``nazorat devices credentials`` takes effect on the running stack at once.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import signal
import string
from pathlib import Path

from nazorat.services.errors import AccountNameError
from telemetry.device_ids import device_id_problem

ENGINE_USER = "nazorat-engine"
_SERVICE_RE = re.compile(r"^nazorat-engine(-[a-z0-9]{1,16})?$")
_ITERATIONS = 1000
_DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
_ACL_TEMPLATE = _DEPLOY / "acl.template"
_ENGINE_ACL_TEMPLATE = _DEPLOY / "acl-engine.template"


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = _ITERATIONS) -> str:
    salt = salt if salt is not None else os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_device_id(device_id: str) -> str:
    """Return ``device_id`` if it may be a device's MQTT login, else raise ``AccountNameError``."""
    problem = device_id_problem(device_id)
    if problem is not None:
        raise AccountNameError(device_id, problem)
    return device_id


def check_service_account(name: str) -> str:
    """Return ``name`` if it is an engine service account name, else raise ``AccountNameError``."""
    if not _SERVICE_RE.match(name):
        raise AccountNameError(name, f"an engine account is {ENGINE_USER!r} or {ENGINE_USER}-<worker> (a-z 0-9, up to 16)")
    return name


def _serves(pid: int, password_file: Path) -> bool:
    """Whether process ``pid`` is a mosquitto started with a config that names ``password_file``."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        conf = Path(os.fsdecode(argv[argv.index(b"-c") + 1]))
        return Path(os.fsdecode(argv[0])).name == "mosquitto" and \
            f"password_file {password_file.resolve()}" in conf.read_text().splitlines()
    except (OSError, ValueError, IndexError):
        return False


class CredentialStore:
    """The broker's password and ACL files in one folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.password_file = self.directory / "passwd"
        self.acl_file = self.directory / "acl"
        self.pid_file = self.directory / "broker.pid"

    def _mkdir(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)

    def _entries(self) -> dict[str, str]:
        if not self.password_file.exists():
            return {}
        out = {}
        for line in self.password_file.read_text().splitlines():
            if ":" in line:
                user, hashed = line.split(":", 1)
                out[user] = hashed
        return out

    def _set_passwords(self, passwords: dict[str, str]) -> None:
        entries = self._entries()
        entries.update({u: hash_password(p) for u, p in passwords.items()})
        self._mkdir()
        tmp = self.password_file.with_suffix(".tmp")
        tmp.touch(0o600)
        tmp.chmod(0o600)
        tmp.write_text("".join(f"{u}:{h}\n" for u, h in sorted(entries.items())))
        tmp.replace(self.password_file)

    def add_devices(self, device_ids: list[str]) -> dict[str, str]:
        """Create or rotate these devices' passwords; returns them (shown once, stored hashed).
        Every id is checked first: one refused id writes nothing."""
        for device_id in device_ids:
            check_device_id(device_id)
        passwords = {d: secrets.token_urlsafe(18) for d in device_ids}
        self._set_passwords(passwords)
        return passwords

    def add_device(self, device_id: str) -> str:
        """Create or rotate a device's password; returns it (shown once, stored hashed)."""
        return self.add_devices([device_id])[device_id]

    def _secret_file(self, account: str) -> Path:
        return self.directory / ("engine.secret" if account == ENGINE_USER else f"{account}.secret")

    def engine_password(self, account: str = ENGINE_USER) -> str:
        """An engine service account's password, created on first use (kept in a mode-600 file)."""
        check_service_account(account)
        secret = self._secret_file(account)
        if secret.exists() and account in self._entries():
            return secret.read_text().strip()
        return self.rotate_engine_password(account)

    def rotate_engine_password(self, account: str = ENGINE_USER) -> str:
        """Create or rotate an engine service account; the ACL gains its block."""
        check_service_account(account)
        password = secrets.token_urlsafe(24)
        self._set_passwords({account: password})
        secret = self._secret_file(account)
        secret.touch(0o600)
        secret.chmod(0o600)
        secret.write_text(password)
        self.write_acl()
        return password

    def engine_accounts(self) -> list[str]:
        return sorted({ENGINE_USER} | {u for u in self._entries() if _SERVICE_RE.match(u)})

    def write_acl(self) -> None:
        """Render the ACL: one block per engine account, then the devices' patterns."""
        self._mkdir()
        block = string.Template(_ENGINE_ACL_TEMPLATE.read_text())
        blocks = "\n".join(block.substitute(engine_user=u) for u in self.engine_accounts())
        self.acl_file.write_text(string.Template(_ACL_TEMPLATE.read_text()).substitute(engine_blocks=blocks))

    # --- the running broker ------------------------------------------------------------
    def reload_broker(self) -> int | None:
        """SIGHUP the running broker that uses these files; returns its PID, or None when
        none is running (the files take effect when it starts)."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        # a stale file may name a recycled PID: signal only a mosquitto that reads our password file
        if not _serves(pid, self.password_file):
            return None
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            return None
        return pid


__all__ = ["ENGINE_USER", "CredentialStore", "check_device_id",
           "check_service_account", "hash_password"]
