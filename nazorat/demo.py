"""The demo stack's accounts: an admin and one officer, created through the public API
with the bootstrap token, their passwords kept in ``DATA_DIR/demo-accounts`` (mode 600)
and printed once, when they are created. Half the demo fleet goes on the officer's
caseload, so signing in as each shows what scoping does."""

from __future__ import annotations

import json
import logging
import os
import secrets
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
DEMO_USERS = (("demo-admin", "admin"), ("demo-officer", "officer"))


def _call(api_url: str, token: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    req = urllib.request.Request(api_url.rstrip("/") + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def ensure_accounts(api_url: str, token: str, path: Path) -> str:
    """Create the demo accounts unless ``path`` records them; returns how to sign in."""
    how = (f"  Sign in:   curl -d grant_type=password -d username=demo-officer -d password=... {api_url}/auth/token\n"
           f"             (passwords of demo-admin and demo-officer in {path})")
    if path.exists():
        return how
    passwords = {}
    for username, role in DEMO_USERS:
        password = secrets.token_urlsafe(12)
        try:
            _call(api_url, token, "POST", "/accounts", {"username": username, "role": role, "password": password})
        except urllib.error.HTTPError as exc:
            if exc.code != 409:
                raise
            log.warning("demo account %s exists but %s is missing: reset its password with the API", username, path)
            continue
        passwords[username] = password
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("".join(f"{u}\t{p}\n" for u, p in passwords.items()))
    shown = "".join(f"             {u} / {p}\n" for u, p in passwords.items())
    return how + "\n  Demo accounts (shown once):\n" + shown.rstrip("\n")


def assign_caseload(api_url: str, token: str, subject_ids: list[str]) -> None:
    """Every other demo subject goes on demo-officer's caseload."""
    officers = [a for a in _call(api_url, token, "GET", "/accounts?limit=1000") if a["username"] == "demo-officer"]
    if not officers:
        return
    for sid in subject_ids[::2]:
        _call(api_url, token, "PUT", f"/subjects/{sid}/assignment",
              {"officer_id": officers[0]["id"], "reason": "demo caseload"})


__all__ = ["DEMO_USERS", "assign_caseload", "ensure_accounts"]
