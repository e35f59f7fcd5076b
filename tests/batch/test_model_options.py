"""``model_options`` are checked when the batch config loads (one path:line error, exit 2,
nothing stored), and secrets in them are refused instead of being stored with the batch."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from typer.testing import CliRunner

from driftwatch.batch.config import load_batch_config
from driftwatch.batch.model_options import LITELLM_OPTIONS, ModelOptions
from driftwatch.cli import app
from driftwatch.model import ModelClient
from driftwatch.store import Store
from driftwatch.testing.fake_openai import FakeOpenAIServer

HEAD = "scenarios: [oversight-config]\nmodels: [openai/gpt-4o]\nmodel_options:\n"


def batch(tmp_path: Path, options: str) -> tuple[int, str, Path, Path]:
    config = tmp_path / "batch.yaml"
    config.write_text(HEAD + options)
    db = tmp_path / "b.duckdb"
    result = CliRunner().invoke(app, ["batch", str(config), "--db", str(db), "-q",
                                      "--no-report"])
    return result.exit_code, result.stderr, config, db


def no_batch_stored(db: Path) -> bool:
    if not db.exists():
        return True
    with Store(db, read_only=True) as store:
        return not store.query("SELECT * FROM batches").rows


@pytest.mark.parametrize(
    ("options", "line", "message"),
    [
        ("  temprature: 0.2\n", 4, "model_options.temprature: unknown field"),
        ("  timeout_s: -1\n", 4, "model_options.timeout_s: Input should be greater than 0"),
        ("  max_retries: lots\n", 4, "model_options.max_retries: Input should be a valid "
         "integer, unable to parse string as an integer"),
        ("  seed: 3\n", 4, "model_options.seed: unknown field"),
        ("  extra:\n    max_tokens: many\n", 5,
         "model_options.extra.max_tokens: must be an integer"),
        ("  extra:\n    stream: true\n", 5,
         "model_options.extra.stream: set by driftwatch (use nothing (streaming is not "
         "supported))"),
        ("  extra:\n    num_retries: 3\n", 5,
         "model_options.extra.num_retries: set by driftwatch (use model_options.max_retries)"),
        ("  extra:\n    top_kk: 3\n", 5, "model_options.extra.top_kk: unknown litellm option "
         "(provider-specific fields go in extra_body)"),
        ("  api_base: localhost:8000\n", 4, "model_options.api_base: must be an http(s) URL"),
    ],
)
def test_a_bad_model_option_fails_at_load_not_in_every_cell(
    tmp_path: Path, options: str, line: int, message: str
) -> None:
    code, err, config, db = batch(tmp_path, options)
    assert code == 2
    assert err == f"error: {config}:{line}: {message}\n"
    assert no_batch_stored(db)


@pytest.mark.parametrize(
    ("options", "line", "key"),
    [
        ("  api_key: sk-live-0123\n", 4, "model_options.api_key"),
        ("  extra:\n    api_key: sk-live-0123\n", 5, "model_options.extra.api_key"),
        ("  extra:\n    extra_headers:\n      Authorization: Bearer sk-live-0123\n", 6,
         "model_options.extra.extra_headers.Authorization"),
        ("  extra:\n    extra_headers: {x-api-key: sk-live-0123}\n", 5,
         "model_options.extra.extra_headers.x-api-key"),
        ("  extra:\n    aws_secret_access_key: abc\n", 5,
         "model_options.extra.aws_secret_access_key"),
    ],
)
def test_a_secret_in_model_options_is_refused_and_never_stored(
    tmp_path: Path, options: str, line: int, key: str
) -> None:
    code, err, config, db = batch(tmp_path, options)
    assert code == 2
    assert err == (f"error: {config}:{line}: {key}: secrets do not belong in a batch config "
                   "(it is stored with the batch); set the provider's environment variable "
                   "instead (e.g. OPENAI_API_KEY)\n")
    assert "sk-live" not in err
    assert no_batch_stored(db)


def test_credentials_in_the_api_base_url_are_refused(tmp_path: Path) -> None:
    code, err, config, _ = batch(tmp_path, "  api_base: https://me:hunter2@llm.internal/v1\n")
    assert code == 2
    assert err.startswith(f"error: {config}:4: model_options.api_base: must not hold a user "
                          "name or password")


def test_token_limits_are_not_mistaken_for_secrets(tmp_path: Path) -> None:
    config = tmp_path / "batch.yaml"
    config.write_text(HEAD + "  timeout_s: 5\n  extra: {max_tokens: 64, max_completion_tokens: "
                      "64, top_k: 4, extra_headers: {X-Trace: abc}}\n")
    loaded, _ = load_batch_config(config)
    assert loaded.model_options.extra == {"max_tokens": 64, "max_completion_tokens": 64,
                                          "top_k": 4, "extra_headers": {"X-Trace": "abc"}}


def test_model_options_mirror_the_model_client_arguments_and_defaults() -> None:
    parameters = inspect.signature(ModelClient.__init__).parameters
    client = {name: p.default for name, p in parameters.items()
              if name not in {"self", "model", "seed", "sleep", "api_key"}}
    assert dict(ModelOptions()) == client


def test_validated_options_reach_the_provider(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """What a worker does with them: ModelClient(model, seed=…, **dict(options))."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    with FakeOpenAIServer([{"content": "ok"}]) as server:
        config = tmp_path / "batch.yaml"
        config.write_text(HEAD + f"  api_base: '{server.base_url}'\n  max_retries: 0\n"
                          "  temperature: 0.5\n  extra: {max_tokens: 7, presence_penalty: 0.25}\n")
        loaded, _ = load_batch_config(config)
        client = ModelClient("openai/fake-model", seed=1, **dict(loaded.model_options))
        client.complete([{"role": "user", "content": "hi"}])
        [request] = server.requests
        headers = server.request_headers[0]
    sent = (request["max_tokens"], request["presence_penalty"], request["temperature"])
    assert sent == (7, 0.25, 0.5)
    assert {k.lower(): v for k, v in headers.items()}["authorization"] == (
        "Bearer sk-from-the-environment")


def test_the_litellm_option_names_exist_in_litellm() -> None:
    """Our list follows litellm.completion's signature (the pass-through names excepted)."""
    from driftwatch.model._litellm import prepare_litellm

    prepare_litellm()
    import litellm

    named = set(inspect.signature(litellm.completion).parameters)
    passthrough = {"metadata", "top_k", "extra_body", "custom_llm_provider", "drop_params",
                   "aws_region_name", "vertex_project", "vertex_location", "safety_settings",
                   "mock_response"}
    assert set(LITELLM_OPTIONS) - passthrough <= named


def test_a_stored_batch_with_a_secret_from_before_cannot_resume_and_says_why(
    tmp_path: Path,
) -> None:
    """A batch stored before secrets were refused: resuming it is one line, no traceback."""
    from datetime import UTC, datetime

    db = tmp_path / "old.duckdb"
    with Store(db) as store:
        store.upsert_batch("batch-old", "old", "interrupted", datetime.now(UTC), config={
            "config": {"name": "old", "scenarios": ["oversight-config"],
                       "models": ["simulated/steadfast"],
                       "model_options": {"api_key": "sk-live-123"}},
            "source": None, "scenarios": ["oversight-config"]})
    result = CliRunner().invoke(app, ["batch", "--resume", "batch-old", "--db", str(db), "-q"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: cannot resume batch-old: its stored config is no "
                                    "longer valid (model_options")
    assert "Traceback" not in result.output
    assert len(result.stderr.splitlines()) == 1
