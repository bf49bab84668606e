"""API request/response models (separate from the runtime's dataclasses)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

from hmi.ports import Role
from scada.config import LoopMode

Comment = Annotated[str, Field(max_length=500)]
WriteValue = StrictBool | StrictInt | StrictFloat


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginBody(Body):
    username: Annotated[str, Field(min_length=1, max_length=200)]
    password: Annotated[str, Field(min_length=1, max_length=256)]


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: Role


class SessionOut(BaseModel):
    username: str
    role: Role
    csrf_token: str
    expires: float


class MeOut(BaseModel):
    username: str
    role: Role
    via: str


class TagWrite(Body):
    value: WriteValue
    comment: Comment | None = None


class SetpointWrite(Body):
    value: StrictInt | StrictFloat
    comment: Comment | None = None


class ModeWrite(Body):
    mode: LoopMode
    comment: Comment | None = None


class CommentBody(Body):
    comment: Comment | None = None


class BypassBody(Body):
    enable: bool = True
    duration_s: Annotated[float, Field(gt=0, le=86_400)] = 3600.0
    reason: Annotated[str, Field(min_length=3, max_length=500)]


class ShelveBody(Body):
    duration_s: Annotated[float, Field(ge=0, le=7 * 86_400)]
    """0 = unshelve."""
    comment: Annotated[str, Field(min_length=3, max_length=500)]


class UserCreate(Body):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=8, max_length=256)]
    role: Role


class UserOut(BaseModel):
    id: int
    username: str
    role: Role
    created_ts: float
    disabled: bool


class CommandOut(BaseModel):
    ok: bool
    old: Any = None
    new: Any = None
    message: str = ""


class Limits(BaseModel):
    min: float
    max: float


class TagOut(BaseModel):
    """A tag's current value with quality and its metadata."""

    name: str
    value: StrictBool | StrictInt | StrictFloat | None
    quality: str
    reason: str
    server_ts: float | None
    source_ts: float | None
    ne107: str
    detail: str
    unit: str
    description: str
    writable: bool
    boolean: bool
    limits: Limits | None
    operator_limits: Limits | None
    tank: str | None
    device: str | None
    kind: str
