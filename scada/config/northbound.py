"""Northbound publishers: how the server feeds a plant's MES / IIoT platform (MQTT today).

Only the declarative settings live here; the publisher itself is ``drivers/mqtt.py``. A secret never
appears in the file: ``password_env`` names the environment variable that holds it.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from scada.config.base import PositiveFloat, StrictModel

_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class MqttConfig(StrictModel):
    """Publish tag values, the server's online/offline status and alarm transitions to an MQTT broker."""

    host: str
    """Broker host name or address."""
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    """Broker port (default 1883, or 8883 with ``tls``)."""
    client_id: str | None = None
    """MQTT client identifier (default ``plating-scada-<line prefix>``); unique per server on a broker."""
    username: str | None = None
    """User name for the broker, if it requires one."""
    password_env: str | None = None
    """Name of the environment variable that holds the password (never the password itself)."""
    tls: bool = False
    """Connect with TLS (server certificate verified)."""
    ca_file: str | None = None
    """CA bundle (PEM) that signed the broker's certificate (default: the system CAs); needs ``tls``."""
    topic_prefix: str | None = None
    """Root of every topic (default ``plating/<line prefix>``), without a trailing slash."""
    qos: Literal[0, 1] = 0
    """QoS of tag-value messages (alarm messages are always QoS 1)."""
    retain: bool = True
    """Retain tag-value messages, so a new subscriber gets every current value at once."""
    patterns: list[str] = []
    """Glob patterns of the tags to publish (e.g. ``line1.*.temp.pv``); empty publishes every tag."""
    max_rate_hz: Annotated[float, Field(gt=0, le=100)] = 1.0
    """At most this many messages per second per tag; faster changes are coalesced to the latest value."""
    publish_alarms: bool = True
    """Publish alarm transitions (QoS 1) and each alarm's current state (retained)."""
    alarm_queue: Annotated[int, Field(ge=10)] = 10_000
    """Alarm transitions kept while the broker is unreachable; beyond this they are counted as dropped."""
    keepalive_s: Annotated[int, Field(ge=1, le=65535)] = 30
    """MQTT keepalive: the broker publishes the ``offline`` will after 1.5 x this silence."""
    timeout_s: PositiveFloat = 10.0
    """Connect and acknowledgement timeout; a broker that does not answer within it counts as lost."""
    reconnect_min_s: PositiveFloat = 1.0
    """First wait before reconnecting after a failure (doubles on each failure)."""
    reconnect_max_s: PositiveFloat = 60.0
    """Cap of the reconnect wait."""

    @field_validator("password_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_RE.match(v):
            raise ValueError(f"{v!r} is not an environment variable name (put the password in the environment, "
                             "and its name here)")
        return v

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v or v.startswith("/") or v.endswith("/") or "//" in v:
            raise ValueError(f"topic prefix {v!r}: use levels like 'plating/line1' (no leading, trailing or "
                             "double slash)")
        if any(c in v for c in "+#\x00"):
            raise ValueError(f"topic prefix {v!r} must not contain the wildcards '+' or '#'")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> MqttConfig:
        if self.ca_file is not None and not self.tls:
            raise ValueError("ca_file is set but tls is false: set tls: true to use it")
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError(f"reconnect_min_s ({self.reconnect_min_s}) is greater than reconnect_max_s "
                             f"({self.reconnect_max_s})")
        return self

    @property
    def broker_port(self) -> int:
        return self.port if self.port is not None else (8883 if self.tls else 1883)

    def prefix_for(self, line_prefix: str) -> str:
        """The topic root: ``topic_prefix`` or ``plating/<line prefix>`` (dots of the prefix become levels)."""
        return self.topic_prefix or "plating/" + line_prefix.replace(".", "/")

    def client_id_for(self, line_prefix: str) -> str:
        return self.client_id or f"plating-scada-{line_prefix}"


class NorthboundConfig(StrictModel):
    """Publishers that feed plant systems above the SCADA (MES, IIoT platforms); all off by default."""

    mqtt: MqttConfig | None = None
    """MQTT publisher of tag values, server status and alarms (off when absent)."""
