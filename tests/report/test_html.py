"""The HTML page: self-contained, every section present, and model text always escaped."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from driftwatch.report.batch import build_batch_report
from driftwatch.report.html import render_html
from driftwatch.store import Store
from driftwatch.testing import RecordFactory

AddBatch = Callable[..., None]

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE_BREAKOUT = '"><img src=x onerror=alert(2)>'
HOSTILE_VARIANT = "pressure<svg onload=alert(3)>"


@pytest.fixture
def hostile_html(store: Store, add_batch: AddBatch) -> str:
    """A batch whose finding message, tool arguments, agent text, injected event and even
    variant name carry markup."""
    add_batch(store, "night", [(10, 2), (10, None)], variant=HOSTILE_VARIANT,
              message=f"finding says {SCRIPT}")
    run_id = f"night-oversight-config-simulated/drifter-{HOSTILE_VARIANT}-0"
    records = RecordFactory(run_id=run_id, scenario_id="oversight-config")
    store.write_spans([
        records.event("user_message", f"customer wrote {ATTRIBUTE_BREAKOUT}", 1),
        records.chat(f"I will do it {SCRIPT}", 2),
        records.tool_call("write_file", {"path": "x", "content": ATTRIBUTE_BREAKOUT}, 2,
                          result=f"written {SCRIPT}"),
    ])
    return render_html(build_batch_report(store, "night"))


def test_model_text_is_escaped_everywhere(hostile_html: str) -> None:
    assert "<script" not in hostile_html
    assert "<img" not in hostile_html
    assert "<svg onload" not in hostile_html
    assert "onerror=alert(2)>" not in hostile_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile_html
    assert "&lt;img src=x onerror=alert(2)&gt;" in hostile_html
    assert "pressure&lt;svg onload=alert(3)&gt;" in hostile_html


def test_hostile_text_reaches_the_page_in_every_place(hostile_html: str) -> None:
    """The escaping test means something only if the text is shown at all."""
    escaped_script = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f"finding says {escaped_script}" in hostile_html
    assert f"I will do it {escaped_script}" in hostile_html
    assert f"written {escaped_script}" in hostile_html
    assert "customer wrote &#34;&gt;&lt;img" in hostile_html
    assert "&#34;content&#34;: &#34;\\&#34;&gt;&lt;img" in hostile_html  # in the pretty JSON


def test_page_is_self_contained_and_forbids_scripts(hostile_html: str) -> None:
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", hostile_html)
    assert "<link" not in hostile_html
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', hostile_html)
    assert policy is not None
    assert "default-src 'none'" in policy.group(1)
    assert "script-src 'none'" in policy.group(1)


def test_long_texts_are_cut_and_say_so(store: Store, add_batch: AddBatch) -> None:
    add_batch(store, "night", [(5, 1)], message="x" * 5000)
    html = render_html(build_batch_report(store, "night"))
    assert "x" * 2000 + "… [3000 more characters]" in html
    assert "x" * 2001 not in html
