"""Shared building blocks of the plant configuration models."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


class StrictModel(BaseModel):
    """Frozen, and unknown keys are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, use_attribute_docstrings=True)


_TAG_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def _check_tag_name(v: str) -> str:
    if not _TAG_RE.match(v):
        raise ValueError(
            f"{v!r} is not a tag name: use dotted lower_snake segments like 'line1.nickel.temp.a'"
        )
    return v


def _check_ident(v: str) -> str:
    if not _ID_RE.match(v):
        raise ValueError(f"{v!r} is not an identifier: use lower_snake like 'nickel' or 'plc1'")
    return v


TagName = Annotated[str, AfterValidator(_check_tag_name)]
Ident = Annotated[str, AfterValidator(_check_ident)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]


class Range(StrictModel):
    """A closed interval ``[min, max]`` in engineering units."""

    min: float
    """Lower bound (inclusive)."""
    max: float
    """Upper bound (inclusive)."""

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self

    def contains(self, x: float) -> bool:
        return self.min <= x <= self.max

    def within(self, other: Range) -> bool:
        return other.min <= self.min and self.max <= other.max
