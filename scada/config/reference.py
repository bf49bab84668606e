"""Generate the key reference of docs/configuration.md from the models, so the doc cannot drift."""

from __future__ import annotations

import types
import typing
from enum import Enum

from pydantic import BaseModel
from pydantic_core import PydanticUndefined


def _type_name(tp: object) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (list, tuple):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"map of {_type_name(args[0])} → {_type_name(args[1])}"
    if isinstance(tp, type) and issubclass(tp, Enum):
        return " | ".join(f"`{m.value}`" for m in tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return f"[{tp.__name__}](#{tp.__name__.lower()})"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = []

    def visit(tp: object) -> None:
        for arg in typing.get_args(tp):
            visit(arg)
        if isinstance(tp, type) and issubclass(tp, BaseModel) and tp not in seen:
            seen.append(tp)
            for f in tp.model_fields.values():
                visit(f.annotation)

    visit(root)
    return seen


def _default(field: typing.Any) -> str:
    if field.is_required():
        return "**required**"
    d = field.default
    if d is PydanticUndefined:
        return ""
    if isinstance(d, BaseModel):
        return "(defaults)"
    if isinstance(d, Enum):
        return f"`{d.value}`"
    if d == [] or d == {}:
        return "empty"
    return f"`{d!r}`" if d is not None else "unset"


def reference_markdown() -> str:
    """Markdown tables, one per model, every key with type, default and meaning."""
    from scada.config.plant import PlantConfig

    out: list[str] = []
    for model in _models(PlantConfig):
        out.append(f"### {model.__name__}\n")
        doc = (model.__doc__ or "").strip().splitlines()
        if doc and not doc[0].startswith(("Create a new model", "!!! abstract")):
            out.append(doc[0] + "\n")
        out.append("| key | type | default | meaning |")
        out.append("|---|---|---|---|")
        for name, f in model.model_fields.items():
            desc = (f.description or "").replace("\n", " ").replace("|", "\\|")
            typ = _type_name(f.annotation).replace("|", "\\|")
            out.append(f"| `{name}` | {typ} | {_default(f)} | {desc} |")
        out.append("")
    return "\n".join(out)


BEGIN = "<!-- BEGIN GENERATED REFERENCE (python -m scada.config.reference --write docs/configuration.md) -->"
END = "<!-- END GENERATED REFERENCE -->"


def splice(doc: str) -> str:
    """Return ``doc`` with the generated reference between the markers replaced by a fresh one."""
    head, _, rest = doc.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n\n{reference_markdown()}\n{END}{tail}"


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    import sys
    from pathlib import Path

    if len(sys.argv) == 3 and sys.argv[1] == "--write":
        p = Path(sys.argv[2])
        p.write_text(splice(p.read_text()))
    else:
        print(reference_markdown())
