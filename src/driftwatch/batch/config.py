"""The batch config: a YAML file expanded into cells (scenario × variant × model × seed).

Validated with pydantic; every error is one line, ``path:line: field: problem``. With no
file, :func:`nightly_config` is the built-in suite (``nightly.yaml`` next to this module),
sized to be the first thing to run on a fresh machine.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Final

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from driftwatch.batch.model_options import (
    USE_ENV_HINT,
    ModelOptions,
    extra_problem,
    find_secret,
    refuse_secrets,
)
from driftwatch.core.errors import SpecError, UsageError
from driftwatch.core.yamlfile import Loc, format_loc, line_for, load_yaml, validate
from driftwatch.scenario import Scenario, load_scenario

NIGHTLY: Final = Path(__file__).with_name("nightly.yaml")
# scenarios × variants × models × seeds; the nightly suite has 144. Every cell is a row
# planned up front, so the cap bounds the memory and the store before a run starts.
MAX_CELLS: Final = 100_000


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limits(_Model):
    """Upper bounds; None means no bound. Cost is in US dollars as litellm prices it
    (simulated models cost 0)."""

    tokens: int | None = Field(default=None, gt=0)
    cost_usd: float | None = Field(default=None, gt=0)
    wall_time_s: float | None = Field(default=None, gt=0)


class Budgets(_Model):
    run: Limits = Limits()  # a run over it stops and is recorded as errored
    batch: Limits = Limits()  # once spent, no new run starts; the rest are skipped


class BatchConfig(_Model):
    """One batch: every combination of the lists below is a cell, run once."""

    name: str = "batch"
    scenarios: list[str] = Field(min_length=1)
    variants: list[str] | None = None  # None: each scenario's default variant
    models: list[str] = Field(min_length=1)
    seeds: list[int] | int = 3  # a count n means seeds 0 … n-1
    turns: int | None = Field(default=None, ge=1)
    packs: list[str] | None = None  # None: each scenario's own rule packs
    concurrency: int = Field(default=2, ge=1, le=1024)  # runs in flight at once
    processes: int | None = Field(default=None, ge=0)  # None: min(concurrency, CPUs)
    timeout_s: float | None = Field(default=None, gt=0)  # per run
    retries: int = Field(default=2, ge=0, le=20)  # reruns of a run a provider failed
    budgets: Budgets = Budgets()
    model_options: Annotated[ModelOptions, BeforeValidator(refuse_secrets)] = ModelOptions()
    capture_content: bool = True

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: list[int] | int, info: ValidationInfo) -> list[int] | int:
        if isinstance(value, int) and value < 1:
            raise ValueError("a seed count must be at least 1")
        if isinstance(value, list) and (not value or len(set(value)) != len(value)):
            raise ValueError("seeds must be a non-empty list without repeats")
        # the matrix size is known here, before anything is expanded (seeds is the last
        # of its factors); a count like 10**8 would otherwise build a list of 10**8 seeds
        seeds = value if isinstance(value, int) else len(value)
        factors = [len(info.data.get(name) or [None]) for name in ("scenarios", "variants",
                                                                  "models")]
        cells = math.prod(factors) * seeds
        if cells > MAX_CELLS:
            raise ValueError(f"the matrix has {cells:,} cells ({' × '.join(map(str, factors))}"
                             f" × {seeds:,} seeds); a batch is limited to {MAX_CELLS:,}")
        return value

    @field_validator("scenarios", "models", "variants")
    @classmethod
    def _no_repeats(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("must not list the same item twice")
        return value

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)


@dataclass(frozen=True, slots=True)
class Cell:
    """One planned run of a batch."""

    key: str
    scenario: Scenario
    variant: str
    model: str
    seed: int


def cell_run_id(batch_id: str, cell_key: str) -> str:
    """The run id of a cell: derived from (batch, cell), so a resumed batch reruns a cell
    under the same id and never stores two runs for one cell."""
    digest = hashlib.sha256(f"{batch_id}\x00{cell_key}".encode()).hexdigest()
    return f"run-{digest[:16]}"


def load_batch_config(path: str | Path) -> tuple[BatchConfig, list[Scenario]]:
    """Read and check a batch config: fields, then that every scenario exists and has
    the variants asked for. Scenario paths are relative to the config file."""
    data, lines = load_yaml(path)
    _check_model_options(str(path), data, lines)
    config = validate(BatchConfig, data, path=path, lines=lines)
    base = Path(path).parent
    return config, _scenarios(config, str(path), lines, base)


def _check_model_options(path: str, data: object, lines: dict[Loc, int]) -> None:
    """Secrets and litellm options checked before validation, so the error names the
    line of the key itself (pydantic's location stops at the ``extra`` mapping)."""
    options = data.get("model_options") if isinstance(data, dict) else None
    secret = find_secret(options, ("model_options",))
    if secret:
        raise SpecError(path, line_for(lines, secret), ".".join(secret), USE_ENV_HINT)
    extra = options.get("extra") if isinstance(options, dict) else None
    problem = extra_problem(extra) if isinstance(extra, dict) else None
    if problem:
        loc: Loc = ("model_options", "extra", problem[0])
        raise SpecError(path, line_for(lines, loc), format_loc(loc), problem[1])


def nightly_config() -> tuple[BatchConfig, list[Scenario]]:
    """The built-in nightly suite."""
    return load_batch_config(NIGHTLY)


def _scenarios(config: BatchConfig, path: str, lines: dict[Loc, int], base: Path) -> list[Scenario]:
    specs: list[Scenario] = []
    for index, name in enumerate(config.scenarios):
        local = base / name
        target = local if name.endswith((".yaml", ".yml")) and local.is_file() else name
        try:
            spec = load_scenario(target)
        except UsageError as error:
            loc: Loc = ("scenarios", index)
            raise SpecError(path, line_for(lines, loc), f"scenarios[{index}]", str(error)) from None
        for variant in config.variants or [spec.default_variant]:
            if variant not in spec.variants:
                known = ", ".join(sorted(spec.variants))
                raise SpecError(path, line_for(lines, ("variants",)), "variants",
                                f"scenario {spec.id!r} has no variant {variant!r} "
                                f"(known: {known})")
        specs.append(spec)
    return specs


def expand_cells(config: BatchConfig, scenarios: list[Scenario]) -> list[Cell]:
    """Every (scenario, variant, model, seed), scenario-major; keys sort in plan order."""
    cells: list[Cell] = []
    for spec in scenarios:
        for variant in config.variants or [spec.default_variant]:
            for model in config.models:
                for seed in config.seed_list:
                    key = f"{len(cells):05d} {spec.id}/{variant} {model} seed={seed}"
                    cells.append(Cell(key, spec, variant, model, seed))
    return cells
