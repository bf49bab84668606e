"""Login, tokens, cookie sessions with CSRF, rate limiting, settings and the bind check."""

from __future__ import annotations

import time

import jwt
import pytest
from fastapi.testclient import TestClient

from hmi import BindRefused, HmiSettings, create_app
from hmi.fake_runtime import FakeRuntime
from hmi.ports import Role
from hmi.security import LoginLimiter, TokenCodec, TokenError
from scada.events import EventKind

from .conftest import PASSWORDS, SECRET


def test_token_login_and_me(client: TestClient, runtime: FakeRuntime) -> None:
    r = client.post("/api/auth/token", data={"username": "engineer", "password": PASSWORDS["engineer"]})
    assert r.status_code == 200 and r.json()["token_type"] == "bearer"
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}).json()
    assert me == {"username": "engineer", "role": "engineer", "via": "bearer"}
    ev = [e for e in runtime.events if e.kind is EventKind.LOGIN][-1]
    assert (ev.source, ev.state, ev.data["address"]) == ("engineer", "ok", "testclient")


def test_wrong_password_is_401_and_audited(client: TestClient, runtime: FakeRuntime) -> None:
    for user in ("engineer", "nobody"):
        r = client.post("/api/auth/token", data={"username": user, "password": "wrong-password"})
        assert r.status_code == 401 and r.json()["detail"] == "wrong user name or password"
    fails = [e for e in runtime.events if e.kind is EventKind.LOGIN and e.state == "failed"]
    assert [e.source for e in fails] == ["engineer", "nobody"]


def test_login_rate_limited_per_user_and_address(client: TestClient) -> None:
    for _ in range(5):
        assert client.post("/api/auth/token", data={"username": "operator", "password": "nope-nope"}).status_code == 401
    r = client.post("/api/auth/token", data={"username": "operator", "password": PASSWORDS["operator"]})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    # another user from the same address is not locked out
    assert client.post("/api/auth/token", data={"username": "viewer", "password": PASSWORDS["viewer"]}).status_code == 200


def test_limiter_window_with_fake_clock() -> None:
    now = [0.0]
    lim = LoginLimiter(3, 60.0, clock=lambda: now[0])
    for _ in range(3):
        lim.failed("Op", "10.0.0.1")
    assert lim.retry_after("op", "10.0.0.1") == pytest.approx(60.0)
    assert lim.retry_after("op", "10.0.0.2") == 0.0
    now[0] = 61.0
    assert lim.retry_after("op", "10.0.0.1") == 0.0


def test_disabled_user_loses_access_at_once(client: TestClient, runtime: FakeRuntime, auth) -> None:  # noqa: ANN001
    h = auth("operator")
    assert client.get("/api/tags", headers=h).status_code == 200
    runtime.disable_user("operator")
    assert client.get("/api/tags", headers=h).status_code == 401
    r = client.post("/api/auth/token", data={"username": "operator", "password": PASSWORDS["operator"]})
    assert r.status_code == 401


@pytest.mark.parametrize("make", [
    pytest.param(lambda: TokenCodec(SECRET, 60, clock=lambda: time.time() - 3600).issue("admin", Role.ADMIN)[0], id="expired"),
    pytest.param(lambda: TokenCodec("another-secret-key-of-enough-length-xx", 60).issue("admin", Role.ADMIN)[0], id="forged"),
    pytest.param(lambda: jwt.encode({"sub": "admin", "role": "admin", "typ": "access", "exp": time.time() + 60},
                                    key="", algorithm="none"), id="alg-none"),
    pytest.param(lambda: TokenCodec(SECRET, 60).issue("admin", Role.ADMIN, "session")[0], id="session-as-bearer"),
    pytest.param(lambda: "garbage.token.here", id="garbage"),
    pytest.param(lambda: TokenCodec(SECRET, 60).issue("ghost", Role.ADMIN)[0], id="unknown-user"),
])
def test_bad_tokens_are_401(client: TestClient, make) -> None:  # noqa: ANN001
    r = client.get("/api/tags", headers={"Authorization": f"Bearer {make()}"})
    assert r.status_code == 401
    r = client.put("/api/loops/nickel.temp/setpoint", json={"value": 56}, headers={"Authorization": f"Bearer {make()}"})
    assert r.status_code == 401


def test_token_role_cannot_exceed_stored_role(client: TestClient) -> None:
    tok = TokenCodec(SECRET, 60).issue("viewer", Role.ADMIN)[0]  # a valid signature cannot promote a user
    assert client.get("/api/users", headers={"Authorization": f"Bearer {tok}"}).status_code == 403


def test_non_bearer_scheme_is_401(client: TestClient) -> None:
    assert client.get("/api/tags", headers={"Authorization": "Basic dXNlcjpwYXNz"}).status_code == 401


def test_codec_rejects_tampered_payload() -> None:
    codec = TokenCodec(SECRET, 60)
    tok, _ = codec.issue("viewer", Role.VIEWER)
    head, body, sig = tok.split(".")
    forged = jwt.encode({"sub": "viewer", "role": "admin", "typ": "access", "exp": time.time() + 60}, "x" * 40)
    with pytest.raises(TokenError):
        codec.decode(f"{head}.{forged.split('.')[1]}.{sig}", "access")


# ---------------------------------------------------------------- cookie sessions and CSRF


def _browser_login(client: TestClient, user: str = "operator") -> str:
    r = client.post("/api/auth/login", json={"username": user, "password": PASSWORDS[user]})
    assert r.status_code == 200, r.text
    return r.json()["csrf_token"]


def test_cookie_session_flags(client: TestClient) -> None:
    r = client.post("/api/auth/login", json={"username": "operator", "password": PASSWORDS["operator"]})
    cookies = r.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("scada_session="))
    csrf = next(c for c in cookies if c.startswith("scada_csrf="))
    assert "HttpOnly" in session and "SameSite=strict" in session and "Path=/" in session
    assert "Secure" not in session  # plain http test server
    assert "HttpOnly" not in csrf and "SameSite=strict" in csrf


def test_cookie_secure_when_configured(runtime: FakeRuntime) -> None:
    app = create_app(runtime, HmiSettings(secret_key=SECRET, cookie_secure=True))
    with TestClient(app) as c:
        r = c.post("/api/auth/login", json={"username": "operator", "password": PASSWORDS["operator"]})
        assert all("Secure" in h for h in r.headers.get_list("set-cookie"))


def test_cookie_writes_need_csrf(client: TestClient, runtime: FakeRuntime) -> None:
    csrf = _browser_login(client)
    assert client.get("/api/auth/me").json()["via"] == "cookie"
    url = "/api/loops/nickel.temp/setpoint"
    r = client.put(url, json={"value": 56})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    assert client.put(url, json={"value": 56}, headers={"X-CSRF-Token": "wrong"}).status_code == 403
    assert runtime.loops[("nickel", "temp")].setpoint == 55.0
    assert client.put(url, json={"value": 56}, headers={"X-CSRF-Token": csrf}).status_code == 200
    assert runtime.loops[("nickel", "temp")].setpoint == 56


def test_logout_clears_session(client: TestClient) -> None:
    _browser_login(client)
    assert client.post("/api/auth/logout").status_code == 204
    assert client.get("/api/auth/me").status_code == 401


def test_login_body_validation(client: TestClient) -> None:
    assert client.post("/api/auth/login", json={"username": "x"}).status_code == 422
    assert client.post("/api/auth/login", json={"username": "x" * 500, "password": "y"}).status_code == 422
    assert client.post("/api/auth/token", data={"username": "x"}).status_code == 422


# ---------------------------------------------------------------- settings


def test_secret_required_unless_demo(runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCADA_SECRET_KEY", raising=False)
    with pytest.raises(ValueError, match="SCADA_SECRET_KEY"):
        create_app(runtime, HmiSettings())
    with pytest.raises(ValueError, match="32"):
        create_app(runtime, HmiSettings(secret_key="short"))
    create_app(runtime, HmiSettings(demo=True))


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCADA_SECRET_KEY", SECRET)
    monkeypatch.setenv("SCADA_TOKEN_LIFETIME_S", "600")
    monkeypatch.setenv("SCADA_MAX_BODY_BYTES", "2048")
    s = HmiSettings()
    assert s.resolved_secret() == SECRET and s.token_lifetime_s == 600 and s.max_body_bytes == 2048


@pytest.mark.parametrize(("settings", "host", "ok"), [
    (HmiSettings(demo=True), "127.0.0.1", True),
    (HmiSettings(demo=True), "::1", True),
    (HmiSettings(demo=True), "localhost", True),
    (HmiSettings(demo=True), "0.0.0.0", False),
    (HmiSettings(demo=True, secret_key=SECRET), "192.168.1.5", False),
    (HmiSettings(secret_key=None), "0.0.0.0", False),
    (HmiSettings(secret_key=SECRET), "0.0.0.0", True),
    (HmiSettings(secret_key=SECRET), "plant-hmi.example", True),
])
def test_check_bind(settings: HmiSettings, host: str, ok: bool) -> None:
    if ok:
        settings.check_bind(host)
    else:
        with pytest.raises(BindRefused):
            settings.check_bind(host)


def test_historian_user_records_with_string_roles_work(client: TestClient, runtime: FakeRuntime) -> None:
    """historian.users.UserRecord carries the role as a plain string: the HMI accepts it as it is."""
    from dataclasses import replace

    runtime.users["operator"] = replace(runtime.users["operator"], role="operator")
    runtime.users["viewer"] = replace(runtime.users["viewer"], role="superuser")
    r = client.post("/api/auth/token", data={"username": "operator", "password": PASSWORDS["operator"]})
    assert r.status_code == 200 and r.json()["role"] == "operator"
    h = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert client.get("/api/auth/me", headers=h).json()["role"] == "operator"
    assert client.post("/api/auth/token", data={"username": "viewer", "password": PASSWORDS["viewer"]}).status_code == 401
