"""HMI test fixtures: a FakeRuntime over the example plant, users of every role, a TestClient per test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hmi import HmiSettings, create_app
from hmi.fake_runtime import FakeRuntime
from hmi.ports import Role, UserRecord
from hmi.security import TokenCodec, hash_password
from scada.config import PlantConfig

SECRET = "test-secret-key-that-is-long-enough-0123456789"
PASSWORDS = {
    "viewer": "viewer-pass-1",
    "operator": "operator-pass-1",
    "engineer": "engineer-pass-1",
    "admin": "admin-pass-1",
}


@pytest.fixture(scope="session")
def password_hashes() -> dict[str, str]:
    """argon2 is deliberately slow: hash each test password once per session."""
    return {name: hash_password(pw) for name, pw in PASSWORDS.items()}


def add_users(rt: FakeRuntime, hashes: dict[str, str]) -> None:
    for i, (name, h) in enumerate(hashes.items(), start=1):
        rt.users[name] = UserRecord(id=i, username=name, password_hash=h, role=Role(name), created_ts=0.0)


@pytest.fixture
def runtime(plant: PlantConfig, password_hashes: dict[str, str]) -> FakeRuntime:
    rt = FakeRuntime(plant, history_s=600.0)
    add_users(rt, password_hashes)
    return rt


@pytest.fixture
def settings() -> HmiSettings:
    return HmiSettings(secret_key=SECRET, login_max_attempts=5)


@pytest.fixture
def app(runtime: FakeRuntime, settings: HmiSettings) -> FastAPI:
    return create_app(runtime, settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="session")
def token() -> Callable[[str], str]:
    """Bearer tokens minted with the test secret (login itself is tested in test_auth.py; argon2 is slow)."""
    codec = TokenCodec(SECRET, 3600)
    cache: dict[str, str] = {}

    def get(role: str) -> str:
        if role not in cache:
            cache[role] = codec.issue(role, Role(role), "access")[0]
        return cache[role]

    return get


@pytest.fixture
def auth(token: Callable[[str], str]) -> Callable[[str], dict[str, str]]:
    return lambda role: {"Authorization": f"Bearer {token(role)}"}


@contextlib.asynccontextmanager
async def serve(app: FastAPI, port: int) -> AsyncIterator[str]:
    """Run the app with uvicorn in this event loop on 127.0.0.1:port."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def free_port_local() -> int:
    """A free port on 127.0.0.1 (bind to 0 and read it back)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def hmi_docs_url(app: FastAPI) -> AsyncIterator[str]:
    """The app served by uvicorn for a browser (skips without chromium unless required)."""
    import os

    if not os.path.exists("/usr/bin/chromium"):  # noqa: ASYNC240 - one stat before any I/O starts
        if os.environ.get("SCADA_REQUIRE_BROWSER") == "1":
            pytest.fail("SCADA_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing")
        pytest.skip("/usr/bin/chromium not installed (apt-get install -y chromium)")
    async with serve(app, free_port_local()) as host:
        yield f"http://{host}"
