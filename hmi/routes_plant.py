"""Tags, tanks, loops, interlocks and alarms: reads for every role, guarded and audited writes."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import Response

from hmi.context import HmiContext, raise_for
from hmi.deps import Ctx, Operator, Viewer
from hmi.ports import CommandKind, CommandResult, Role
from hmi.schemas import (
    BypassBody,
    CommandOut,
    CommentBody,
    ModeWrite,
    SetpointWrite,
    ShelveBody,
    TagOut,
    TagWrite,
)
from hmi.views import (
    alarm_dict,
    check_setpoint,
    check_tag_write,
    find_loop,
    tag_view,
    tank_summary,
    tank_view,
)

router = APIRouter(prefix="/api")

TagName = Annotated[str, Path(min_length=1, max_length=200, description="Dotted tag name, e.g. line1.nickel.temperature.pv")]
Ref = Annotated[str, Path(min_length=3, max_length=130, description="<tank>.<id>, e.g. nickel.temp")]


def _tag(ctx: HmiContext, name: str) -> dict[str, object]:
    store = ctx.runtime.tags
    if name not in store and ctx.catalog.meta(name) is None:
        raise HTTPException(404, detail=f"unknown tag {name!r}")
    sample = store.get(name) if name in store else None
    return tag_view(name, sample, ctx.catalog.meta_dict(name))


@router.get("/tags", response_model=None, responses={200: {"model": list[TagOut]}}, tags=["tags"],
            summary="Current values (filter by prefix or tank)")
async def list_tags(
    ctx: Ctx,
    p: Viewer,
    prefix: Annotated[str | None, Query(max_length=200)] = None,
    tank: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    if tank is not None:
        try:
            ctx.runtime.plant.tank(tank)
        except KeyError:
            raise HTTPException(404, detail=f"unknown tank {tank!r}") from None
    snap = ctx.runtime.tags.snapshot()  # one consistent copy, taken on the event loop
    dumps = json.JSONEncoder(separators=(",", ":")).encode

    def render() -> bytes:
        out = []
        for name in sorted(snap):
            if prefix and not name.startswith(prefix):
                continue
            if tank and not ctx.catalog.in_tank(name, tank):
                continue
            out.append(tag_view(name, snap[name], ctx.catalog.meta_dict(name)))
        # one small dumps per row (not one big C call): the GIL can go back to the scan between rows
        return ("[" + ",".join([dumps(row) for row in out]) + "]").encode()

    # plain dicts (validating 1,000s of models per poll costs more than the data), rendered off the event
    # loop: a large plant's tag list takes tens of ms to encode and the scan must not wait for it
    body = await asyncio.to_thread(render) if len(snap) > 200 else render()
    return Response(body, media_type="application/json")


@router.get("/tags/{name}", response_model=TagOut, tags=["tags"], summary="One tag: value, quality, timestamps, unit, limits")
async def get_tag(ctx: Ctx, p: Viewer, name: TagName) -> dict[str, object]:
    return _tag(ctx, name)


@router.put("/tags/{name}/value", response_model=CommandOut, tags=["tags"],
            summary="Write a setpoint or output (operator: operator limits; engineer: engineering limits)",
            responses={403: {"description": "role too low or read-only tag"}, 404: {"description": "unknown tag"},
                       409: {"description": "an interlock forbids it"}, 422: {"description": "outside limits / wrong type"}})
async def write_tag(ctx: Ctx, p: Viewer, name: TagName, body: TagWrite) -> CommandOut:
    store = ctx.runtime.tags
    known = name in store
    meta = ctx.catalog.meta(name)
    if not known and meta is None:
        raise HTTPException(404, detail=f"unknown tag {name!r}")
    old = store.get(name).value if known else None
    refusal = check_tag_write(name, body.value, meta, p.role, known)
    result = refusal or await ctx.runtime.write_tag(name, body.value, p.actor)
    await ctx.audit(p.actor, "tag.write", name, result, old=old, new=body.value, tank=meta.tank if meta else None,
                    comment=body.comment)
    raise_for(result)
    return CommandOut(ok=True, old=result.old if result.old is not None else old, new=body.value, message=result.reason)


# ---------------------------------------------------------------- tanks


def _tank_views(ctx: HmiContext) -> list[dict[str, object]]:
    rt = ctx.runtime
    snap = rt.tags.snapshot()
    loops = {(s.tank, s.loop): s for s in rt.loop_states()}
    ils = {(s.tank, s.interlock): s for s in rt.interlock_states()}
    alarms = rt.active_alarms()
    return [tank_view(ctx.catalog, t, snap, loops, ils, alarms) for t in rt.plant.ordered_tanks()]


@router.get("/tanks", tags=["tanks"], summary="Line overview: every tank in line order with PV/SP/quality/state")
async def list_tanks(ctx: Ctx, p: Viewer) -> list[dict[str, object]]:
    return [tank_summary(v) for v in _tank_views(ctx)]


@router.get("/tanks/{tank_id}", tags=["tanks"], summary="One tank: values, probes, loops, interlocks, alarms")
async def get_tank(ctx: Ctx, p: Viewer, tank_id: Annotated[str, Path(max_length=64)]) -> dict[str, object]:
    rt = ctx.runtime
    try:
        tank = rt.plant.tank(tank_id)
    except KeyError:
        raise HTTPException(404, detail=f"unknown tank {tank_id!r}") from None
    loops = {(s.tank, s.loop): s for s in rt.loop_states()}
    ils = {(s.tank, s.interlock): s for s in rt.interlock_states()}
    return tank_view(ctx.catalog, tank, rt.tags.snapshot(), loops, ils, rt.active_alarms())


# ---------------------------------------------------------------- loops


def _loop(ctx: HmiContext, loop_id: str):  # noqa: ANN202
    found = find_loop(ctx.runtime.plant, loop_id)
    if found is None:
        raise HTTPException(404, detail=f"unknown loop {loop_id!r} (use <tank>.<loop>, e.g. nickel.temp)")
    return found


def _loop_state(ctx: HmiContext, tank: str, loop: str):  # noqa: ANN202
    return next((s for s in ctx.runtime.loop_states() if s.tank == tank and s.loop == loop), None)


@router.put("/loops/{loop_id}/setpoint", response_model=CommandOut, tags=["loops"],
            summary="Change a loop setpoint (operator: operator limits; engineer: limits)")
async def set_setpoint(ctx: Ctx, p: Viewer, loop_id: Ref, body: SetpointWrite) -> CommandOut:
    tank, lc = _loop(ctx, loop_id)
    st = _loop_state(ctx, tank.id, lc.id)
    old = st.setpoint if st else None
    checked = check_setpoint(tank, lc, body.value, p.role)
    if isinstance(checked, CommandResult):
        result = checked
    else:
        result = await ctx.runtime.set_setpoint(tank.id, lc.id, checked, p.actor)
    await ctx.audit(p.actor, "loop.setpoint", f"{tank.id}.{lc.id}", result, old=old, new=body.value, tank=tank.id,
                    comment=body.comment)
    raise_for(result)
    return CommandOut(ok=True, old=old, new=body.value, message=result.reason)


@router.put("/loops/{loop_id}/mode", response_model=CommandOut, tags=["loops"], summary="Switch a loop auto/manual/off (operator+)")
async def set_mode(ctx: Ctx, p: Viewer, loop_id: Ref, body: ModeWrite) -> CommandOut:
    tank, lc = _loop(ctx, loop_id)
    st = _loop_state(ctx, tank.id, lc.id)
    old = st.mode.value if st else None
    if not p.role.at_least(Role.OPERATOR):
        result = CommandResult.refused(CommandKind.FORBIDDEN, f"role {p.role.value} may not change loop modes; operator or higher is needed")
    else:
        result = await ctx.runtime.set_loop_mode(tank.id, lc.id, body.mode, p.actor)
    await ctx.audit(p.actor, "loop.mode", f"{tank.id}.{lc.id}", result, old=old, new=body.mode.value, tank=tank.id,
                    comment=body.comment)
    raise_for(result)
    return CommandOut(ok=True, old=old, new=body.mode.value, message=result.reason)


# ---------------------------------------------------------------- interlocks


def _interlock(ctx: HmiContext, ref: str):  # noqa: ANN202
    tank_id, _, il_id = ref.partition(".")
    try:
        tank = ctx.runtime.plant.tank(tank_id)
    except KeyError:
        raise HTTPException(404, detail=f"unknown interlock {ref!r} (use <tank>.<interlock>)") from None
    cfg = next((i for i in tank.interlocks if i.id == il_id), None)
    if cfg is None:
        raise HTTPException(404, detail=f"unknown interlock {ref!r}")
    return tank, cfg


@router.post("/interlocks/{interlock_id}/reset", response_model=CommandOut, tags=["interlocks"],
             summary="Reset a latched interlock whose cause has cleared (operator+)")
async def reset_interlock(ctx: Ctx, p: Viewer, interlock_id: Ref, body: CommentBody | None = None) -> CommandOut:
    tank, cfg = _interlock(ctx, interlock_id)
    if not p.role.at_least(Role.OPERATOR):
        result = CommandResult.refused(CommandKind.FORBIDDEN, f"role {p.role.value} may not reset interlocks; operator or higher is needed")
    else:
        result = await ctx.runtime.reset_interlock(tank.id, cfg.id, p.actor)
    await ctx.audit(p.actor, "interlock.reset", f"{tank.id}.{cfg.id}", result, tank=tank.id,
                    comment=body.comment if body else None)
    raise_for(result)
    return CommandOut(ok=True, old=result.old, new=result.new, message=result.reason)


@router.post("/interlocks/{interlock_id}/bypass", response_model=CommandOut, tags=["interlocks"],
             summary="Start or end a time-limited bypass (engineer+; never for non-bypassable interlocks)")
async def bypass_interlock(ctx: Ctx, p: Viewer, interlock_id: Ref, body: BypassBody) -> CommandOut:
    tank, cfg = _interlock(ctx, interlock_id)
    if not p.role.at_least(Role.ENGINEER):
        result = CommandResult.refused(CommandKind.FORBIDDEN, f"role {p.role.value} may not bypass interlocks; engineer or higher is needed")
    elif body.enable and not cfg.bypassable:
        result = CommandResult.refused(CommandKind.CONFLICT, f"interlock {tank.id}.{cfg.id} is not bypassable")
    elif body.enable and body.duration_s > cfg.max_bypass_s:
        result = CommandResult.refused(
            CommandKind.LIMIT, f"bypass of {body.duration_s:g} s exceeds the maximum {cfg.max_bypass_s:g} s of {tank.id}.{cfg.id}"
        )
    else:
        result = await ctx.runtime.bypass_interlock(
            tank.id, cfg.id, p.actor, enable=body.enable, duration_s=body.duration_s, reason=body.reason
        )
    await ctx.audit(p.actor, "interlock.bypass" if body.enable else "interlock.unbypass", f"{tank.id}.{cfg.id}", result,
                    tank=tank.id, comment=body.reason, extra={"duration_s": body.duration_s})
    raise_for(result)
    return CommandOut(ok=True, old=result.old, new=result.new, message=result.reason)


# ---------------------------------------------------------------- alarms


@router.get("/alarms", tags=["alarms"], summary="Active, unacknowledged and shelved alarms")
async def list_alarms(
    ctx: Ctx, p: Viewer, tank: Annotated[str | None, Query(max_length=64)] = None
) -> list[dict[str, object]]:
    return [alarm_dict(a) for a in ctx.runtime.active_alarms() if tank is None or a.tank == tank]


AlarmId = Annotated[str, Path(min_length=1, max_length=200)]


@router.post("/alarms/{alarm_id}/ack", response_model=CommandOut, tags=["alarms"], summary="Acknowledge an alarm (operator+)")
async def ack_alarm(ctx: Ctx, p: Viewer, alarm_id: AlarmId, body: CommentBody | None = None) -> CommandOut:
    comment = body.comment if body else None
    if not p.role.at_least(Role.OPERATOR):
        result = CommandResult.refused(CommandKind.FORBIDDEN, f"role {p.role.value} may not acknowledge alarms; operator or higher is needed")
    else:
        result = await ctx.runtime.ack_alarm(alarm_id, p.actor, comment or "")
    await ctx.audit(p.actor, "alarm.ack", alarm_id, result, comment=comment)
    raise_for(result)
    return CommandOut(ok=True, old=result.old, new=result.new)


@router.post("/alarms/{alarm_id}/shelve", response_model=CommandOut, tags=["alarms"],
             summary="Shelve an alarm for a time (0 = unshelve) with a reason (operator+)")
async def shelve_alarm(ctx: Ctx, p: Operator, alarm_id: AlarmId, body: ShelveBody) -> CommandOut:
    if body.duration_s > ctx.settings.max_shelve_s:
        result = CommandResult.refused(
            CommandKind.LIMIT, f"shelving for {body.duration_s:g} s exceeds the maximum {ctx.settings.max_shelve_s:g} s"
        )
    else:
        result = await ctx.runtime.shelve_alarm(alarm_id, p.actor, body.duration_s, body.comment)
    await ctx.audit(p.actor, "alarm.shelve", alarm_id, result, comment=body.comment, extra={"duration_s": body.duration_s})
    raise_for(result)
    return CommandOut(ok=True, old=result.old, new=result.new)
