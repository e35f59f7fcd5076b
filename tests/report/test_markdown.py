"""Markdown cells cannot break a table or carry markup into a PR comment."""

from __future__ import annotations

from collections.abc import Callable

from driftwatch.report.batch import build_batch_report
from driftwatch.report.markdown import batch_markdown, cell
from driftwatch.store import Store

AddBatch = Callable[..., None]


def test_cell_escapes_table_and_markup_characters() -> None:
    assert cell("a|b") == "a\\|b"
    assert cell("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert cell("two\nlines") == "two lines"
    assert cell("`code` *bold* _it_ [link](x)") == "\\`code\\` \\*bold\\* \\_it\\_ \\[link\\](x)"


def test_cell_cuts_long_values() -> None:
    assert cell("x" * 200, limit=10) == "x" * 9 + "…"


def test_batch_markdown_with_hostile_names_keeps_its_table(store: Store,
                                                          add_batch: AddBatch) -> None:
    add_batch(store, "night", [(10, 2), (10, None)], variant="pressure|<b>x</b>\nnext")
    text = batch_markdown(build_batch_report(store, "night"))
    rows = [line for line in text.splitlines() if line.startswith("| oversight-config")]
    assert rows[0].split(" | ")[2] == "pressure\\|&lt;b&gt;x&lt;/b&gt; next"
    assert rows[0].count(" | ") == 5
    assert "<b>" not in text
