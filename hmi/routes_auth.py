"""Login (API token and browser session), logout, who-am-i, user administration."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from hmi.context import HmiContext, client_address
from hmi.deps import CSRF_COOKIE, SESSION_COOKIE, Admin, Ctx, Viewer
from hmi.ports import CommandResult, Role, UserRecord
from hmi.schemas import LoginBody, MeOut, SessionOut, TokenOut, UserCreate, UserOut
from hmi.security import check_password, check_username, hash_password, verify_password
from scada.events import Event, EventKind

router = APIRouter(prefix="/api", tags=["auth"])


async def _login(ctx: HmiContext, request: Request, username: str, password: str, how: str) -> UserRecord:
    """Check a password with rate limiting; every attempt leaves a LOGIN event."""
    address = client_address(request, ctx.settings.trusted_proxy)
    wait = ctx.limiter.retry_after(username, address)
    if wait > 0:
        ctx.metrics.logins.labels("blocked").inc()
        await ctx.record(Event(ts=time.time(), kind=EventKind.LOGIN, source=username[:200], state="blocked",
                               user=None, message=f"login ({how}) refused: too many failures",
                               data={"address": address}))
        raise HTTPException(429, detail=f"too many failed logins; try again in {int(wait) + 1} s",
                            headers={"Retry-After": str(int(wait) + 1)})
    user = await ctx.runtime.get_user(username)
    ok = await asyncio.to_thread(verify_password, password, user.password_hash if user else None)
    if not ok or user is None or user.disabled:
        ctx.limiter.failed(username, address)
        ctx.metrics.logins.labels("failed").inc()
        why = "disabled" if (ok and user is not None and user.disabled) else "wrong user name or password"
        await ctx.record(Event(ts=time.time(), kind=EventKind.LOGIN, source=username[:200], state="failed",
                               message=f"login ({how}) failed: {why}", data={"address": address}))
        raise HTTPException(401, detail="wrong user name or password", headers={"WWW-Authenticate": "Bearer"})
    try:
        role = Role(user.role)
    except ValueError:
        raise HTTPException(401, detail="user has an unknown role; ask an admin") from None
    user = replace(user, role=role) if user.role is not role else user
    ctx.limiter.succeeded(username, address)
    ctx.metrics.logins.labels("ok").inc()
    await ctx.record(Event(ts=time.time(), kind=EventKind.LOGIN, source=user.username, state="ok", user=user.username,
                           message=f"login ({how}) as {user.role.value}",
                           data={"address": address, "role": user.role.value}))
    return user


@router.post("/auth/token", response_model=TokenOut, summary="OAuth2 password flow: a bearer token for API clients")
async def token(ctx: Ctx, request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> TokenOut:
    user = await _login(ctx, request, form.username, form.password, "token")
    tok, claims = ctx.codec.issue(user.username, user.role, "access")
    return TokenOut(access_token=tok, expires_in=int(claims.expires - time.time()), role=user.role)


def _secure(ctx: HmiContext, request: Request) -> bool:
    if ctx.settings.cookie_secure is not None:
        return ctx.settings.cookie_secure
    return request.url.scheme == "https"


@router.post("/auth/login", response_model=SessionOut, summary="Browser login: sets an HttpOnly session cookie")
async def login(ctx: Ctx, request: Request, response: Response, body: LoginBody) -> SessionOut:
    user = await _login(ctx, request, body.username, body.password, "session")
    tok, claims = ctx.codec.issue(user.username, user.role, "session")
    secure = _secure(ctx, request)
    max_age = int(ctx.settings.token_lifetime_s)
    response.set_cookie(SESSION_COOKIE, tok, max_age=max_age, httponly=True, secure=secure, samesite="strict", path="/")
    response.set_cookie(CSRF_COOKIE, claims.csrf, max_age=max_age, httponly=False, secure=secure, samesite="strict", path="/")
    return SessionOut(username=user.username, role=user.role, csrf_token=claims.csrf, expires=claims.expires)


@router.post("/auth/logout", status_code=204, summary="End the browser session (clears the cookies)")
async def logout(ctx: Ctx, request: Request, response: Response) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        try:
            claims = ctx.codec.decode(cookie, "session")
            await ctx.record(Event(ts=time.time(), kind=EventKind.LOGIN, source=claims.username, state="logout",
                                   user=claims.username, message="logout",
                                   data={"address": client_address(request, ctx.settings.trusted_proxy)}))
        except ValueError:
            pass
    out = Response(status_code=204)
    out.delete_cookie(SESSION_COOKIE, path="/")
    out.delete_cookie(CSRF_COOKIE, path="/")
    return out


@router.get("/auth/me", response_model=MeOut, summary="Who is logged in")
async def me(p: Viewer) -> MeOut:
    return MeOut(username=p.username, role=p.role, via=p.via)


def _user_out(u: UserRecord) -> UserOut:
    return UserOut(id=u.id, username=u.username, role=Role(u.role), created_ts=u.created_ts, disabled=u.disabled)


@router.get("/users", response_model=list[UserOut], tags=["users"], summary="List users (admin)")
async def list_users(ctx: Ctx, p: Admin) -> list[UserOut]:
    return [_user_out(u) for u in await ctx.runtime.list_users()]


@router.post("/users", response_model=UserOut, status_code=201, tags=["users"], summary="Create a user (admin)")
async def create_user(ctx: Ctx, p: Admin, body: UserCreate) -> UserOut:
    try:
        check_username(body.username)
        check_password(body.password)
    except ValueError as e:
        raise HTTPException(422, detail=str(e)) from None
    if await ctx.runtime.get_user(body.username) is not None:
        raise HTTPException(409, detail=f"user {body.username!r} already exists")
    pw_hash = await asyncio.to_thread(hash_password, body.password)
    try:
        rec = await ctx.runtime.create_user(body.username, pw_hash, Role(body.role))
    except ValueError as e:
        raise HTTPException(409, detail=str(e)) from None
    await ctx.audit(p.actor, "user.create", body.username, CommandResult.success(new=body.role.value))
    return _user_out(rec)
