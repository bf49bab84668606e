"""Passwords (argon2 via pwdlib), signed tokens (JWT HS256) and the login rate limiter.

Pure: no FastAPI, no I/O, the clock is passed in; so every rule is testable in microseconds.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import jwt
from jwt.exceptions import InvalidTokenError
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from hmi.ports import Role

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 256
_ALG = "HS256"

_hasher = PasswordHash((Argon2Hasher(),))
# A fixed hash to verify against when the user does not exist, so timing does not reveal names.
_DUMMY_HASH = _hasher.hash("not-a-real-password-" + secrets.token_hex(8))


def check_username(name: str) -> str:
    """Return the name or raise ValueError saying what is allowed."""
    if not USERNAME_RE.match(name):
        raise ValueError("user name must be 1-64 characters: letters, digits and _ . @ - (starting with a letter or digit)")
    return name


def check_password(password: str) -> str:
    if not (MIN_PASSWORD <= len(password) <= MAX_PASSWORD):
        raise ValueError(f"password must be {MIN_PASSWORD}-{MAX_PASSWORD} characters")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """Constant-ish time: a missing user still costs one argon2 verification."""
    try:
        if password_hash is None:
            _hasher.verify(password, _DUMMY_HASH)
            return False
        return _hasher.verify(password, password_hash)
    except Exception:  # noqa: BLE001 - a malformed stored hash is a failed login, not a 500
        return False


@dataclass(frozen=True, slots=True)
class TokenClaims:
    username: str
    role: Role
    kind: str
    """``access`` (bearer API token) or ``session`` (browser cookie)."""
    expires: float
    csrf: str = ""
    """Session tokens only: the value the X-CSRF-Token header must carry."""


class TokenError(ValueError):
    """Token missing, expired, forged or malformed."""


class TokenCodec:
    """Issues and checks HS256 tokens with one secret."""

    def __init__(self, secret: str, lifetime_s: float, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._lifetime_s = lifetime_s
        self._clock = clock

    def issue(self, username: str, role: Role, kind: str = "access") -> tuple[str, TokenClaims]:
        now = self._clock()
        claims = TokenClaims(
            username=username,
            role=role,
            kind=kind,
            expires=now + self._lifetime_s,
            csrf=secrets.token_urlsafe(24) if kind == "session" else "",
        )
        payload = {
            "sub": username,
            "role": role.value,
            "typ": kind,
            "iat": int(now),
            "exp": int(claims.expires),
            "jti": secrets.token_urlsafe(12),
        }
        if claims.csrf:
            payload["csrf"] = claims.csrf
        return jwt.encode(payload, self._secret, algorithm=_ALG), claims

    def decode(self, token: str, kind: str) -> TokenClaims:
        if not token or len(token) > 4096:
            raise TokenError("missing or oversized token")
        try:
            data = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALG],
                options={"require": ["exp", "sub", "typ"], "verify_exp": False},
            )
        except InvalidTokenError as e:
            raise TokenError(f"invalid token: {e}") from None
        exp = data.get("exp")
        if not isinstance(exp, int | float) or exp <= self._clock():
            raise TokenError("token expired")
        if data.get("typ") != kind:
            raise TokenError(f"wrong token type (expected {kind})")
        try:
            role = Role(data.get("role"))
        except ValueError:
            raise TokenError("token carries an unknown role") from None
        sub = data.get("sub")
        if not isinstance(sub, str):
            raise TokenError("token subject is not a user name")
        csrf = data.get("csrf", "")
        return TokenClaims(username=sub, role=role, kind=kind, expires=float(exp), csrf=str(csrf))


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(expected) and given is not None and hmac.compare_digest(expected.encode(), given.encode())


class LoginLimiter:
    """Failed-login counter per (user, source address) over a sliding window."""

    def __init__(
        self, max_attempts: int, window_s: float, clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000
    ) -> None:
        self._max = max_attempts
        self._window = window_s
        self._clock = clock
        self._max_keys = max_keys
        self._fails: dict[tuple[str, str], deque[float]] = {}

    def _prune(self, key: tuple[str, str]) -> deque[float]:
        q = self._fails.get(key)
        if q is None:
            return deque()
        cutoff = self._clock() - self._window
        while q and q[0] <= cutoff:
            q.popleft()
        if not q:
            del self._fails[key]
        return q

    def retry_after(self, username: str, address: str) -> float:
        """Seconds until another attempt is allowed (0 = allowed now)."""
        key = (username.lower(), address)
        q = self._prune(key)
        if len(q) < self._max:
            return 0.0
        return max(0.0, q[0] + self._window - self._clock())

    def failed(self, username: str, address: str) -> None:
        if len(self._fails) >= self._max_keys:
            for k in list(self._fails)[: self._max_keys // 10]:
                self._prune(k)
            if len(self._fails) >= self._max_keys:  # still full: forget the oldest keys
                for k in list(self._fails)[: self._max_keys // 10]:
                    self._fails.pop(k, None)
        self._fails.setdefault((username.lower(), address), deque()).append(self._clock())

    def succeeded(self, username: str, address: str) -> None:
        self._fails.pop((username.lower(), address), None)
