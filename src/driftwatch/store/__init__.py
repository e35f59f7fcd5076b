"""The DuckDB store: schema and migrations, Arrow-batched writes, public views, safe
read-only user SQL and SQL predicates. The only package that imports duckdb.

Names are loaded on first use (PEP 562), so ``driftwatch sql`` pays only for the query
path and not for pyarrow's writers, the predicate engine or the migrations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftwatch.core.lazy import lazy_exports

if TYPE_CHECKING:
    from driftwatch.store.arrow import (
        DERIVED_ATTRIBUTE_COLUMNS,
        FINDING_SCHEMA,
        SPAN_SCHEMA,
        findings_to_arrow,
        records_to_arrow,
    )
    from driftwatch.store.db import Store, live_store
    from driftwatch.store.final_state import FinalStateEvaluator
    from driftwatch.store.migrations import MIGRATIONS, PUBLIC_VIEWS, apply_migrations
    from driftwatch.store.pairs import PairCondition, validate_pair_condition
    from driftwatch.store.predicates import (
        BATCH_COLUMNS,
        PredicateEvaluator,
        validate_predicate,
    )
    from driftwatch.store.result import QueryResult
    from driftwatch.store.safe_sql import check_read_only, safe_query

_WHERE: dict[str, str] = {
    "DERIVED_ATTRIBUTE_COLUMNS": "arrow",
    "FINDING_SCHEMA": "arrow",
    "SPAN_SCHEMA": "arrow",
    "findings_to_arrow": "arrow",
    "records_to_arrow": "arrow",
    "Store": "db",
    "live_store": "db",
    "FinalStateEvaluator": "final_state",
    "MIGRATIONS": "migrations",
    "PUBLIC_VIEWS": "migrations",
    "apply_migrations": "migrations",
    "PairCondition": "pairs",
    "validate_pair_condition": "pairs",
    "BATCH_COLUMNS": "predicates",
    "PredicateEvaluator": "predicates",
    "validate_predicate": "predicates",
    "QueryResult": "result",
    "check_read_only": "safe_sql",
    "safe_query": "safe_sql",
}

__all__ = [
    "BATCH_COLUMNS",
    "DERIVED_ATTRIBUTE_COLUMNS",
    "FINDING_SCHEMA",
    "MIGRATIONS",
    "PUBLIC_VIEWS",
    "SPAN_SCHEMA",
    "FinalStateEvaluator",
    "PairCondition",
    "PredicateEvaluator",
    "QueryResult",
    "Store",
    "apply_migrations",
    "check_read_only",
    "findings_to_arrow",
    "live_store",
    "records_to_arrow",
    "safe_query",
    "validate_pair_condition",
    "validate_predicate",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
