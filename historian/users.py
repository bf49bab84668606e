"""HMI user records (the HMI hashes passwords; this module only stores the hash)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

_COLS = "id, username, password_hash, role, created_ts, disabled"


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    username: str
    password_hash: str
    role: str
    created_ts: float
    disabled: bool


class UserExists(ValueError):
    pass


class UnknownUser(KeyError):
    def __str__(self) -> str:
        return f"unknown user {self.args[0]!r}"


def _user(r: Any) -> UserRecord:
    return UserRecord(int(r[0]), r[1], r[2], r[3], float(r[4]), bool(r[5]))


async def create_user(
    engine: AsyncEngine, *, username: str, password_hash: str, role: str, created_ts: float | None = None
) -> UserRecord:
    """Add a user; raises :class:`UserExists` when the name is taken."""
    if not username.strip():
        raise ValueError("username must not be empty")
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO users (username, password_hash, role, created_ts, disabled) "
                     "VALUES (:u, :h, :r, :c, :d)"),
                {"u": username, "h": password_hash, "r": role,
                 "c": time.time() if created_ts is None else created_ts, "d": False},
            )
    except IntegrityError:
        raise UserExists(f"user {username!r} already exists") from None
    user = await get_user(engine, username)
    assert user is not None
    return user


async def get_user(engine: AsyncEngine, username: str) -> UserRecord | None:
    async with engine.connect() as conn:
        res = await conn.execute(text(f"SELECT {_COLS} FROM users WHERE username = :u"), {"u": username})
        row = res.first()
    return None if row is None else _user(row)


async def list_users(engine: AsyncEngine) -> list[UserRecord]:
    async with engine.connect() as conn:
        res = await conn.execute(text(f"SELECT {_COLS} FROM users ORDER BY username"))
        return [_user(r) for r in res.all()]


async def _update(engine: AsyncEngine, username: str, column: str, value: Any) -> UserRecord:
    async with engine.begin() as conn:
        res = await conn.execute(text(f"UPDATE users SET {column} = :v WHERE username = :u"),
                                 {"v": value, "u": username})
        if not res.rowcount:
            raise UnknownUser(username)
    user = await get_user(engine, username)
    assert user is not None
    return user


async def update_user_role(engine: AsyncEngine, username: str, role: str) -> UserRecord:
    return await _update(engine, username, "role", role)


async def set_user_disabled(engine: AsyncEngine, username: str, disabled: bool = True) -> UserRecord:
    return await _update(engine, username, "disabled", bool(disabled))


async def set_user_password_hash(engine: AsyncEngine, username: str, password_hash: str) -> UserRecord:
    return await _update(engine, username, "password_hash", password_hash)
