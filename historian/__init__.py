"""SQL historian: tag samples with deadband/swinging-door logging, the event journal, HMI users.

Public API (see docs/historian.md): :class:`Historian` (submit/start/stop/status/queries),
:func:`upgrade`, :func:`downgrade`, :func:`current`, :func:`check_schema`, :class:`SchemaError`.
"""

from historian.buffer import BufferError, BufferFull, ForwardBuffer
from historian.db import (
    DEFAULT_URL,
    SchemaError,
    check_schema,
    current,
    downgrade,
    head_revision,
    make_engine,
    resolve_url,
    upgrade,
)
from historian.policy import Record, TagPolicy, effective_deadband
from historian.queries import Bucket, StoredSample, UnknownTag
from historian.service import Historian
from historian.users import UnknownUser, UserExists, UserRecord

__all__ = [
    "DEFAULT_URL", "Bucket", "BufferError", "BufferFull", "ForwardBuffer", "Historian", "Record", "SchemaError",
    "StoredSample", "TagPolicy", "UnknownTag", "UnknownUser", "UserExists", "UserRecord", "check_schema",
    "current", "downgrade", "effective_deadband", "head_revision", "make_engine", "resolve_url", "upgrade",
]
