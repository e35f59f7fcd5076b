"""The examples in docs/alerts.md work: the YAML is a valid AlertConfig, the SQL runs
against the schema, the webhook body example has the shape the sink sends."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from driftwatch.alert import AlertConfig
from driftwatch.alert.slack import finding_payload
from driftwatch.core import Finding
from driftwatch.store import Store

DOC = Path(__file__).resolve().parents[2] / "docs" / "alerts.md"

FindingFactory = Callable[..., Finding]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_yaml_example_is_a_valid_config(tmp_path: Path) -> None:
    [example] = blocks("yaml")
    path = tmp_path / "alerts.yaml"
    path.write_text(example, encoding="utf-8")
    config = AlertConfig.load(path)
    assert config.webhook is not None
    assert (config.min_severity, config.cooldown_s, config.dedupe) == ("medium", 300, True)


def test_sql_examples_run(memory_store: Store, make_finding: FindingFactory) -> None:
    finding = make_finding()
    memory_store.write_findings([finding])
    memory_store.record_alert(
        f"{finding.finding_id}:webhook", finding.finding_id, "webhook", "failed", 1, None, "x"
    )
    [sql] = blocks("sql")
    statements = [part.strip() for part in sql.split(";") if part.strip()]
    assert len(statements) == 5
    for statement in statements:
        memory_store.query(statement)  # raises StoreError if the example is wrong


def test_json_example_has_the_sent_shape(make_finding: FindingFactory) -> None:
    [example] = blocks("json")
    documented = json.loads(example)
    sent = finding_payload(make_finding())
    assert set(documented) == set(sent)
    assert [b["type"] for b in documented["blocks"]] == [b["type"] for b in sent["blocks"]]
