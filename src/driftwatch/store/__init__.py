"""The DuckDB store: schema and migrations, Arrow-batched writes, public views, safe
read-only user SQL and SQL predicates. The only package that imports duckdb."""

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
from driftwatch.store.predicates import BATCH_COLUMNS, PredicateEvaluator, validate_predicate
from driftwatch.store.result import QueryResult
from driftwatch.store.safe_sql import check_read_only, safe_query

__all__ = [
    "BATCH_COLUMNS",
    "DERIVED_ATTRIBUTE_COLUMNS",
    "FINDING_SCHEMA",
    "MIGRATIONS",
    "PUBLIC_VIEWS",
    "SPAN_SCHEMA",
    "FinalStateEvaluator",
    "PredicateEvaluator",
    "QueryResult",
    "Store",
    "apply_migrations",
    "check_read_only",
    "findings_to_arrow",
    "live_store",
    "records_to_arrow",
    "safe_query",
    "validate_predicate",
]
