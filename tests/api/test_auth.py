"""Accounts and authentication: argon2 passwords, the OAuth2 password flow, refresh
rotation and revocation, lockout and the per-address limit, password change, scoped API
keys, the bootstrap token, ``nazorat users add``."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg

from api.auth import issue_access
from tests.api.officers import BOOTSTRAP, PASSWORD, admin, app_client, bearer, login, make_account, sign_in
from tests.conftest import ROOT


def _token(c: object, **form: str) -> object:
    return c.post("/auth/token", data=form)  # type: ignore[attr-defined]


def test_password_flow_refresh_rotation_and_logout(database_url: str) -> None:
    with app_client(database_url) as c:
        officer_id = make_account(c, "olga", "officer")
        tokens = login(c, "olga")
        assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 900
        me = c.get("/auth/me", headers=bearer(tokens["access_token"])).json()
        assert me == {"username": "olga", "role": "officer", "account_id": officer_id, "unit_id": "hq",
                      "subject_id": None, "scope": f"caseload:{officer_id}", "via": "token", "key_scopes": None}
        # a refresh token is single-use: it returns a new pair
        r = c.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
        assert r.status_code == 200, r.text
        second = r.json()
        assert second["refresh_token"] != tokens["refresh_token"]
        # reusing the spent one is refused and revokes the account's sessions (theft)
        r = c.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
        assert r.status_code == 401
        r = c.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]})
        assert r.status_code == 401
        # logout revokes
        third = login(c, "olga")
        assert c.post("/auth/logout", headers=bearer(third["access_token"]),
                      json={"refresh_token": third["refresh_token"]}).status_code == 204
        r = c.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": third["refresh_token"]})
        assert r.status_code == 401
        # a wrong password, an unknown name, a tampered or expired token: 401
        assert c.post("/auth/token", data={"grant_type": "password", "username": "olga",
                                           "password": "wrong password"}).status_code == 401
        assert c.post("/auth/token", data={"grant_type": "password", "username": "nobody",
                                           "password": PASSWORD}).status_code == 401
        forged = issue_access("another-secret-" + "y" * 32, account_id=officer_id, username="olga", role="admin",
                              unit_id="hq",
                              subject_id=None, ttl_s=60)
        assert c.get("/auth/me", headers=bearer(forged)).status_code == 401
        expired = issue_access("test-secret-" + "x" * 32, account_id=officer_id, username="olga", role="officer",
                               unit_id="hq", subject_id=None, ttl_s=60, now=0)
        assert c.get("/auth/me", headers=bearer(expired)).status_code == 401
        assert c.get("/auth/me", headers=bearer(tokens["access_token"] + "x")).status_code == 401
    with psycopg.connect(database_url) as conn:
        (stored,) = conn.execute("SELECT password_hash FROM accounts WHERE username = 'olga'").fetchone()
        actions = [r[0] for r in conn.execute("SELECT action FROM audit_log WHERE actor IN ('olga', 'nobody')"
                                              " ORDER BY id")]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert actions.count("auth.login") == 2 and actions.count("auth.login_failed") == 2
    assert "auth.refresh" in actions and "auth.logout" in actions


def test_lockout_after_repeated_failures(database_url: str) -> None:
    with app_client(database_url, max_failures=3, lockout_s=600) as c:
        account_id = make_account(c, "oleg", "officer")
        for _ in range(3):
            r = c.post("/auth/token", data={"grant_type": "password", "username": "oleg", "password": "bad guess 1"})
            assert r.status_code == 401
        # locked now: even the right password is refused until the lock ends or an admin lifts it
        r = c.post("/auth/token", data={"grant_type": "password", "username": "oleg", "password": PASSWORD})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) == 600
        assert r.headers["content-type"].startswith("application/problem+json")
        assert c.post(f"/accounts/{account_id}/unlock", headers=admin(c)).status_code == 204
        login(c, "oleg")
        for _ in range(3):
            c.post("/auth/token", data={"grant_type": "password", "username": "oleg", "password": "bad guess 2"})
        with psycopg.connect(database_url) as conn:  # the lock runs out (as if lockout_s had passed)
            conn.execute("UPDATE accounts SET locked_until = now() - interval '1 s' WHERE id = %s", (account_id,))
        r = c.post("/auth/token", data={"grant_type": "password", "username": "oleg", "password": "bad guess 3"})
        assert r.status_code == 401  # one slip after the lock ran out does not lock again
        login(c, "oleg")
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT action, details->>'reason' FROM audit_log WHERE actor = 'oleg' ORDER BY id").fetchall()
    assert [a for a, _ in rows][:5] == ["auth.login_failed"] * 3 + ["auth.login_refused", "auth.login"]
    assert rows[3][1] == "account locked"


def test_failures_are_limited_per_address(database_url: str) -> None:
    with app_client(database_url, addr_max_failures=4, addr_window_s=900) as c:
        make_account(c, "vera", "officer")
        for i in range(4):  # different names, one address: no single account reaches its lockout
            r = c.post("/auth/token", data={"grant_type": "password", "username": f"guess{i}", "password": "x" * 12})
            assert r.status_code == 401
        r = c.post("/auth/token", data={"grant_type": "password", "username": "vera", "password": PASSWORD})
        assert r.status_code == 429 and "address" in r.json()["detail"]


def test_password_change_revokes_sessions(database_url: str) -> None:
    with app_client(database_url) as c:
        make_account(c, "ivan", "supervisor")
        tokens = login(c, "ivan")
        h = bearer(tokens["access_token"])
        r = c.post("/auth/password", headers=h, json={"current_password": "not it at all", "new_password": "n" * 12})
        assert r.status_code == 403
        r = c.post("/auth/password", headers=h, json={"current_password": PASSWORD, "new_password": "short"})
        assert r.status_code == 422
        r = c.post("/auth/password", headers=h, json={"current_password": PASSWORD, "new_password": "a new passphrase"})
        assert r.status_code == 204
        assert c.post("/auth/token", data={"grant_type": "refresh_token",
                                           "refresh_token": tokens["refresh_token"]}).status_code == 401
        assert c.post("/auth/token", data={"grant_type": "password", "username": "ivan",
                                           "password": PASSWORD}).status_code == 401
        login(c, "ivan", "a new passphrase")
        # an API key or the bootstrap token has no password to change
        assert c.post("/auth/password", headers=admin(c), json={"current_password": PASSWORD,
                                                                 "new_password": "n" * 12}).status_code == 403


def test_api_keys_are_scoped_hashed_and_revocable(database_url: str) -> None:
    with app_client(database_url) as c:
        sup_id = make_account(c, "integration", "supervisor")
        r = c.post("/api-keys", headers=admin(c), json={"account_id": sup_id, "name": "sms gateway",
                                                         "scopes": ["alerts:read"]})
        assert r.status_code == 201, r.text
        key = r.json()["key"]
        key_id = r.json()["id"]
        assert key.startswith("nzk_") and r.json()["scopes"] == ["alerts:read"]
        h = bearer(key)
        me = c.get("/auth/me", headers=h).json()
        assert me["via"] == "key" and me["key_scopes"] == ["alerts:read"] and me["role"] == "supervisor"
        assert c.get("/alerts", headers=h).status_code == 200
        assert c.get("/subjects", headers=h).status_code == 403  # registry:read not granted
        assert c.post("/subjects", headers=h, json={"id": "s1", "full_name": "x"}).status_code == 403
        assert c.post("/auth/stream-token", headers=h).status_code in (204, 403)
        listed = c.get("/api-keys", headers=admin(c)).json()
        assert [k["id"] for k in listed] == [key_id] and "key" not in listed[0]
        assert c.delete(f"/api-keys/{key_id}", headers=admin(c)).status_code == 200
        assert c.get("/alerts", headers=h).status_code == 401
        assert c.get("/alerts", headers=bearer(key[:-1] + ("A" if key[-1] != "A" else "B"))).status_code == 401
        # an officer cannot make keys or accounts
        _, officer = sign_in(c, "olga", "officer")
        assert c.post("/api-keys", headers=officer, json={"account_id": sup_id, "name": "x",
                                                          "scopes": ["*"]}).status_code == 403
    with psycopg.connect(database_url) as conn:
        dump = conn.execute("SELECT k::text FROM api_keys k").fetchone()[0]
        audit = conn.execute("SELECT string_agg(details::text, ' ') FROM audit_log").fetchone()[0]
    # the secret part follows the second "_" (token_urlsafe may itself hold "_")
    secret = key.split("_", 2)[2]
    assert len(secret) >= 40
    assert key not in dump and secret not in dump and key not in audit


def test_bootstrap_token_is_an_admin_key(database_url: str) -> None:
    with app_client(database_url) as c:
        me = c.get("/auth/me", headers=admin(c)).json()
        assert me["role"] == "admin" and me["via"] == "bootstrap" and me["scope"] == "all"
        assert c.get("/auth/me", headers=bearer(BOOTSTRAP + "x")).status_code == 401
        assert c.get("/auth/me").status_code == 401


def test_users_add_command(database_url: str) -> None:
    env = {**os.environ, "NAZORAT_DATABASE_URL": database_url}
    cmd = [sys.executable, "-m", "nazorat.cli", "users", "add", "dilnoza", "--role", "supervisor"]
    r = subprocess.run(cmd, check=False, input=b"a long passphrase\n", env=env, cwd=ROOT, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert b"created supervisor dilnoza" in r.stdout and b"a long passphrase" not in r.stdout + r.stderr
    r = subprocess.run(cmd, check=False, input=b"short\n", env=env, cwd=ROOT, capture_output=True, timeout=120)
    assert r.returncode == 2
    with app_client(database_url) as c:
        assert c.get("/auth/me", headers=bearer(login(c, "dilnoza", "a long passphrase")["access_token"])).json()[
            "role"] == "supervisor"
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM audit_log WHERE action = 'account.create'").fetchone()[0] == 1
