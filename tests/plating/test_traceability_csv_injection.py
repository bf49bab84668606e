"""CSV export of a load record never hands a spreadsheet a formula typed by a user."""

from __future__ import annotations

from scada.plating.traceability import _text_cell


def test_formula_like_text_is_quoted() -> None:
    assert _text_cell("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert _text_cell("+1+1") == "'+1+1"
    assert _text_cell("@SUM(A1)") == "'@SUM(A1)"
    assert _text_cell("PN-1234") == "PN-1234"
    assert _text_cell(12.5) == 12.5
