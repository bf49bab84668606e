"""Authentication dependencies: bearer token or cookie session (+ CSRF on writes), role gates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer

from hmi.context import HmiContext, client_address, ctx_of
from hmi.ports import Actor, Role
from hmi.security import TokenError, csrf_matches

SESSION_COOKIE = "scada_session"
CSRF_COOKIE = "scada_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


@dataclass(frozen=True, slots=True)
class Principal:
    username: str
    role: Role
    address: str
    via: str
    """``bearer`` or ``cookie``."""

    @property
    def actor(self) -> Actor:
        return Actor(username=self.username, role=self.role, address=self.address)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


async def authenticate(
    request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Principal:
    """Who is calling. Cookie sessions must echo the CSRF token on every unsafe method."""
    ctx: HmiContext = ctx_of(request)
    address = client_address(request, ctx.settings.trusted_proxy)
    auth_header = request.headers.get("authorization")
    try:
        if auth_header is not None:
            if token is None:
                raise _unauthorized("Authorization header must be 'Bearer <token>'")
            claims = ctx.codec.decode(token, "access")
            via = "bearer"
        else:
            cookie = request.cookies.get(SESSION_COOKIE)
            if not cookie:
                raise _unauthorized("not authenticated: log in or send a bearer token")
            claims = ctx.codec.decode(cookie, "session")
            via = "cookie"
    except TokenError as e:
        raise _unauthorized(str(e)) from None
    user = await ctx.runtime.get_user(claims.username)
    if user is None or user.disabled:
        raise _unauthorized("user is disabled or no longer exists")
    if via == "cookie" and request.method not in SAFE_METHODS:
        if not csrf_matches(claims.csrf, request.headers.get(CSRF_HEADER)):
            raise HTTPException(status_code=403, detail="CSRF token missing or wrong: send the X-CSRF-Token header")
    try:
        stored = Role(user.role)
    except ValueError:
        raise _unauthorized(f"user has an unknown role {str(user.role)[:20]!r}") from None
    # The role is the stored one (a demoted user loses rights at once), never more than the token's.
    role = stored if stored.rank <= claims.role.rank else claims.role
    return Principal(username=user.username, role=role, address=address, via=via)


def require(role: Role):  # noqa: ANN201 - returns a FastAPI dependency
    async def dep(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.role.at_least(role):
            raise HTTPException(
                status_code=403, detail=f"role {principal.role.value} may not do this; {role.value} or higher is needed"
            )
        return principal

    return dep


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Engineer = Annotated[Principal, Depends(require(Role.ENGINEER))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
Ctx = Annotated[HmiContext, Depends(ctx_of)]
