"""HMI server settings (environment ``SCADA_*``) and the bind-address safety check."""

from __future__ import annotations

import ipaddress
import secrets

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class BindRefused(ValueError):
    """Serving on this address would expose an unsafe configuration."""


class HmiSettings(BaseSettings):
    """Read from ``SCADA_<KEY>`` environment variables (or pass values directly)."""

    model_config = SettingsConfigDict(env_prefix="SCADA_", extra="ignore")

    secret_key: SecretStr | None = None
    """HMAC key for tokens and sessions (>= 32 characters). Required unless ``demo``."""
    demo: bool = False
    """Demo mode: demo users exist; a random secret is generated; loopback only."""
    token_lifetime_s: float = Field(default=8 * 3600, gt=0, le=7 * 86400)
    """Lifetime of API tokens and browser sessions (one shift by default)."""
    cookie_secure: bool | None = None
    """Mark cookies Secure; ``None`` = when the request came over https."""
    login_max_attempts: int = Field(default=5, ge=1, le=1000)
    """Failed logins allowed per user + source address within ``login_window_s``."""
    login_window_s: float = Field(default=300.0, gt=0)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    """Larger request bodies get 413."""
    ws_send_timeout_s: float = Field(default=2.0, gt=0)
    """A WebSocket client that cannot take a frame in this time is dropped."""
    ws_max_rate_hz: float = Field(default=10.0, gt=0, le=100)
    """Upper bound of pushes per tag per second to one client."""
    max_shelve_s: float = Field(default=8 * 3600, gt=0)
    trusted_proxy: bool = False
    """Take the client address from X-Forwarded-For (only behind your own reverse proxy)."""

    def resolved_secret(self) -> str:
        """The configured secret; in demo mode a fresh random one when none is configured."""
        if self.secret_key is not None:
            key = self.secret_key.get_secret_value()
            if len(key) < 32:
                raise ValueError("SCADA_SECRET_KEY must be at least 32 characters")
            return key
        if self.demo:
            return secrets.token_urlsafe(48)
        raise ValueError(
            "SCADA_SECRET_KEY is not set: generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
        )

    def check_bind(self, host: str) -> None:
        """Refuse a non-loopback bind with demo users or without a configured secret key."""
        if _is_loopback(host):
            return
        if self.demo:
            raise BindRefused(f"refusing to serve on {host!r} in demo mode (demo users with printed passwords)")
        if self.secret_key is None:
            raise BindRefused(f"refusing to serve on {host!r} without SCADA_SECRET_KEY")


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
