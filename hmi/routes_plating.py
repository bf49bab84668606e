"""Electroplating: recipes (versioned), loads on the line and their moves, the per-load traceability record.

Reads for every role; loads are created, moved and aborted by operators; recipes are edited by
engineers. Refusals map to statuses like every other route (``STATUS_OF``: 404 unknown, 409 state or
occupied tank, 422 bad input) and carry ``issues`` (key path + message) where the plating layer gives
them. Every write is audited through :meth:`HmiContext.audit`, accepted or refused, except an accepted
recipe save: the plating layer writes that audit event itself (old and new body, version; the adapter
adds the source address), so it is recorded once.

The printable report is the plating layer's HTML (every text escaped, inline SVG, no script) served
with the strict CSP; its one inline ``<style>`` block is swapped for ``/static/plating/report.css``
because ``style-src 'self'`` forbids inline styles.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import Field, StrictFloat, StrictInt

from hmi.context import STATUS_OF, HmiContext, log
from hmi.deps import Ctx, Principal, Viewer
from hmi.ports import (
    CommandKind,
    LoadFilter,
    LoadRecordView,
    NewLoad,
    PlatingPort,
    PlatingResult,
    Role,
)
from hmi.schemas import Body, Comment

router = APIRouter(prefix="/api", tags=["plating"])

RecipeId = Annotated[str, Path(min_length=1, max_length=64, description="Recipe id, e.g. ni-cr")]
LoadId = Annotated[str, Path(min_length=1, max_length=64, description="Load (flight bar / barcode) id")]
TimeQ = Annotated[datetime | None, Query(description="ISO 8601 or epoch seconds (creation time of the load)")]
Status = Literal["queued", "in_tank", "in_transit", "done", "aborted"]
Short = Annotated[str, Field(max_length=64)]

REFUSALS: dict[int | str, dict[str, Any]] = {
    403: {"description": "role too low"}, 404: {"description": "unknown load, tank or recipe"},
    409: {"description": "state forbids it (tank occupied, load not in a tank, finished)"},
    422: {"description": "refused input: `detail` and `issues` [{path, message}]"},
}
_STYLE = re.compile(r"<style>.*?</style>", re.S)
REPORT_CSS = "<link rel='stylesheet' href='/static/plating/report.css'>"


class RecipeSave(Body):
    body: Annotated[dict[str, Any], Field(description=(
        "RecipeBody: {part_number, description?, steps: [{tank, dwell_min_s, dwell_max_s, "
        "current_density_a_dm2? | current_a?, ramp_s?, temperature_c? {min,max}, ph? {min,max}, efficiency?, "
        "note?}]}"))]
    comment: Comment = ""


class LoadCreate(Body):
    part_number: Annotated[str, Field(min_length=1, max_length=64)]
    quantity: Annotated[StrictInt, Field(le=10_000_000)]
    area_dm2: Annotated[StrictFloat | StrictInt, Field(le=1e6, allow_inf_nan=False,
                                                       description="Plated surface area (dm2), > 0")]
    customer_order: Annotated[str, Field(max_length=100)] = ""
    id: Short | None = None
    recipe_id: Short | None = None
    note: Comment = ""


class EnterBody(Body):
    tank: Annotated[str, Field(min_length=1, max_length=64)]
    comment: Comment | None = None


class LeaveBody(Body):
    comment: Comment | None = None


class AbortBody(Body):
    reason: Annotated[str, Field(min_length=3, max_length=500)]


def _port(ctx: HmiContext) -> PlatingPort:
    port = getattr(ctx.runtime, "plating_port", None)
    if port is None:
        raise HTTPException(404, detail="this server runs no plating layer")
    return port  # type: ignore[no-any-return]


def _forbidden(p: Principal, role: Role, what: str) -> PlatingResult | None:
    if p.role.at_least(role):
        return None
    return PlatingResult(False, CommandKind.FORBIDDEN, f"role {p.role.value} may not {what}; {role.value} or higher is needed")


def _answer(result: PlatingResult, status: int = 200) -> JSONResponse:
    if result.ok:
        return JSONResponse(result.data or {}, status_code=status)
    body: dict[str, Any] = {"detail": result.reason or result.kind.value}
    if result.issues:
        body["issues"] = [{"path": i.path, "message": i.message} for i in result.issues]
    return JSONResponse(body, status_code=STATUS_OF.get(result.kind, 409))


def _epoch(dt: datetime | None) -> float | None:
    if dt is None:
        return None
    try:
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
    except (OverflowError, OSError, ValueError):
        raise HTTPException(422, detail="start/end out of range") from None


# ---------------------------------------------------------------- recipes


@router.get("/recipes", summary="Latest version of every recipe")
async def list_recipes(ctx: Ctx, p: Viewer) -> list[dict[str, Any]]:
    return _port(ctx).recipes()


@router.get("/recipes/{recipe_id}", summary="One recipe (latest, or ?version=n)", responses={404: REFUSALS[404]})
async def get_recipe(ctx: Ctx, p: Viewer, recipe_id: RecipeId,
                     version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None) -> dict[str, Any]:
    r = _port(ctx).recipe(recipe_id, version)
    if r is None:
        raise HTTPException(404, detail=f"unknown recipe {recipe_id!r}" + (f" version {version}" if version else ""))
    return r


@router.get("/recipes/{recipe_id}/versions", summary="Every version of a recipe, oldest first",
            responses={404: REFUSALS[404]})
async def recipe_versions(ctx: Ctx, p: Viewer, recipe_id: RecipeId) -> list[dict[str, Any]]:
    versions = _port(ctx).recipe_versions(recipe_id)
    if not versions:
        raise HTTPException(404, detail=f"unknown recipe {recipe_id!r}")
    return versions


@router.put("/recipes/{recipe_id}", summary="Create a recipe or save its next version (engineer+)",
            responses={k: v for k, v in REFUSALS.items() if k in (403, 409, 422)})
async def save_recipe(ctx: Ctx, p: Viewer, recipe_id: RecipeId, body: RecipeSave) -> JSONResponse:
    port = _port(ctx)
    old = port.recipe(recipe_id)
    result = _forbidden(p, Role.ENGINEER, "edit recipes") or await port.save_recipe(
        recipe_id, body.body, p.actor, body.comment)
    if not result.audited:  # an accepted new version is audited by the plating layer itself
        await ctx.audit(p.actor, "recipe.save", f"recipe:{recipe_id}", result.as_command(),
                        old=None if old is None else f"v{old['version']}",
                        new=f"v{result.data['version']}" if result.ok and result.data else "refused",
                        comment=body.comment or None,
                        extra={"issues": [f"{i.path}: {i.message}" for i in result.issues]} if result.issues else None)
    return _answer(result)


# ---------------------------------------------------------------- loads


@router.get("/loads", summary="Loads on the line now (?on_line=true) or the load history (search)")
async def list_loads(
    ctx: Ctx,
    p: Viewer,
    on_line: bool = False,
    text: Annotated[str | None, Query(max_length=100, description="in id, part number or customer order")] = None,
    part: Annotated[str | None, Query(max_length=64, description="part number (exact)")] = None,
    order: Annotated[str | None, Query(max_length=100, description="customer order (exact)")] = None,
    status: Status | None = None,
    start: TimeQ = None,
    end: TimeQ = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    f = LoadFilter(text=text or None, part_number=part or None, customer_order=order or None, status=status,
                   since=_epoch(start), until=_epoch(end), limit=limit, on_line=on_line)
    return await _port(ctx).find_loads(f)


@router.post("/loads", status_code=201, summary="Put a load on the line (operator+)",
             responses={k: v for k, v in REFUSALS.items() if k in (403, 409, 422)})
async def create_load(ctx: Ctx, p: Viewer, body: LoadCreate) -> JSONResponse:
    port = _port(ctx)
    new = NewLoad(part_number=body.part_number, quantity=body.quantity, area_dm2=float(body.area_dm2),
                  customer_order=body.customer_order, id=body.id, recipe_id=body.recipe_id, note=body.note)
    result = _forbidden(p, Role.OPERATOR, "create loads") or await port.create_load(new, p.actor)
    source = (result.data or {}).get("id") or body.id or "load"
    await ctx.audit(p.actor, "load.create", str(source), result.as_command(),
                    new=f"{body.part_number} x{body.quantity}, {float(body.area_dm2):g} dm2, order {body.customer_order}",
                    comment=body.note or None,
                    extra={"load": body.model_dump(), "issues": [f"{i.path}: {i.message}" for i in result.issues]})
    return _answer(result, 201)


@router.get("/loads/{load_id}", summary="One load with its tank visits", responses={404: REFUSALS[404]})
async def get_load(ctx: Ctx, p: Viewer, load_id: LoadId) -> dict[str, Any]:
    load = await _port(ctx).get_load(load_id)
    if load is None:
        raise HTTPException(404, detail=f"unknown load {load_id!r}")
    return load


@router.post("/loads/{load_id}/enter", summary="The load goes into a tank (operator+)", responses=REFUSALS)
async def enter_tank(ctx: Ctx, p: Viewer, load_id: LoadId, body: EnterBody) -> JSONResponse:
    port = _port(ctx)
    result = _forbidden(p, Role.OPERATOR, "move loads") or await port.enter(load_id, body.tank, p.actor)
    await ctx.audit(p.actor, "load.enter", load_id, result.as_command(), new=body.tank, tank=body.tank[:64],
                    comment=body.comment)
    return _answer(result)


@router.post("/loads/{load_id}/leave", summary="The load comes out of its tank (operator+)", responses=REFUSALS)
async def leave_tank(ctx: Ctx, p: Viewer, load_id: LoadId, body: LeaveBody | None = None) -> JSONResponse:
    port = _port(ctx)
    before = await port.get_load(load_id)
    tank = before.get("tank") if before else None
    result = _forbidden(p, Role.OPERATOR, "move loads") or await port.leave(load_id, p.actor)
    await ctx.audit(p.actor, "load.leave", load_id, result.as_command(), old=tank, tank=tank,
                    comment=body.comment if body else None)
    return _answer(result)


@router.post("/loads/{load_id}/abort", summary="Take a load off the line with a reason (operator+)",
             responses=REFUSALS)
async def abort_load(ctx: Ctx, p: Viewer, load_id: LoadId, body: AbortBody) -> JSONResponse:
    port = _port(ctx)
    before = await port.get_load(load_id)
    result = _forbidden(p, Role.OPERATOR, "abort loads") or await port.abort(load_id, body.reason, p.actor)
    await ctx.audit(p.actor, "load.abort", load_id, result.as_command(), old=before.get("status") if before else None,
                    new="aborted" if result.ok else None, tank=before.get("tank") if before else None,
                    comment=body.reason)
    return _answer(result)


# ---------------------------------------------------------------- traceability


async def _record(ctx: HmiContext, load_id: str) -> LoadRecordView:
    try:
        rec = await _port(ctx).record(load_id)
    except HTTPException:
        raise
    except Exception as e:  # noqa: BLE001 - the history store is away: say so, do not pretend a record
        log.exception("load record %s failed", load_id)
        raise HTTPException(503, detail=f"the history of load {load_id} cannot be read now: {type(e).__name__}") from None
    if rec is None:
        raise HTTPException(404, detail=f"unknown load {load_id!r}")
    return rec


@router.get("/loads/{load_id}/record", summary="Traceability record (JSON; ?trends=true adds the dwell samples)",
            responses={404: REFUSALS[404]})
async def load_record(ctx: Ctx, p: Viewer, load_id: LoadId, trends: bool = False) -> dict[str, Any]:
    return (await _record(ctx, load_id)).to_dict(trends=trends)


@router.get("/loads/{load_id}/record.csv", summary="Traceability record as CSV (one row per tank visit)",
            response_class=Response, responses={404: REFUSALS[404]})
async def load_record_csv(ctx: Ctx, p: Viewer, load_id: LoadId) -> Response:
    rec = await _record(ctx, load_id)
    fname = re.sub(r"[^A-Za-z0-9_.-]", "_", load_id)
    return Response(rec.to_csv(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="load-{fname}.csv"'})


@router.get("/loads/{load_id}/report", summary="Printable traceability report (HTML with inline SVG trends)",
            response_class=HTMLResponse, responses={404: REFUSALS[404]})
async def load_report(ctx: Ctx, p: Viewer, load_id: LoadId) -> HTMLResponse:
    rec = await _record(ctx, load_id)
    html = _STYLE.sub(REPORT_CSS, rec.to_html(), count=1)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})
