"""Per-device MQTT credentials for Mosquitto: a password file and an ACL.

Passwords are stored the way ``mosquitto_passwd`` stores them (PBKDF2-SHA512,
``user:$7$<iterations>$<salt>$<hash>``), written by Python so no extra binary is
needed. Each device's username is its device id; the ACL lets it publish only under
that id. The engine has a service account. After a change, the broker reloads the files
on SIGHUP (``MosquittoBroker.reload``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import string
from pathlib import Path

ENGINE_USER = "nazorat-engine"
_ITERATIONS = 1000
_ACL_TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "acl.template"


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = _ITERATIONS) -> str:
    salt = salt if salt is not None else os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


class CredentialStore:
    """The broker's password and ACL files in one folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.password_file = self.directory / "passwd"
        self.acl_file = self.directory / "acl"

    def _entries(self) -> dict[str, str]:
        if not self.password_file.exists():
            return {}
        out = {}
        for line in self.password_file.read_text().splitlines():
            if ":" in line:
                user, hashed = line.split(":", 1)
                out[user] = hashed
        return out

    def set_password(self, username: str, password: str) -> None:
        if not username or any(c in username for c in ":\n#+/") or username.startswith("$"):
            raise ValueError(f"unusable MQTT username {username!r}")
        entries = self._entries()
        entries[username] = hash_password(password)
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.password_file.with_suffix(".tmp")
        tmp.write_text("".join(f"{u}:{h}\n" for u, h in sorted(entries.items())))
        tmp.chmod(0o600)
        tmp.replace(self.password_file)

    def add_device(self, device_id: str) -> str:
        """Create or rotate a device's password; returns it (shown once, stored hashed)."""
        password = secrets.token_urlsafe(18)
        self.set_password(device_id, password)
        return password

    def engine_password(self) -> str:
        """The engine service account's password, created on first use."""
        secret = self.directory / "engine.secret"
        if secret.exists():
            return secret.read_text().strip()
        password = secrets.token_urlsafe(24)
        self.set_password(ENGINE_USER, password)
        secret.write_text(password)
        secret.chmod(0o600)
        return password

    def write_acl(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.acl_file.write_text(string.Template(_ACL_TEMPLATE.read_text()).substitute(engine_user=ENGINE_USER))


__all__ = ["ENGINE_USER", "CredentialStore", "hash_password"]
