"""Text embeddings through litellm, for the monitors that compare meaning (goal drift)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from driftwatch.model._litellm import prepare_litellm

__all__ = ["Embedder", "litellm_embedder"]

Embedder = Callable[[Sequence[str]], Sequence[Sequence[float]]]


def litellm_embedder(model: str, *, timeout_s: float = 10.0) -> Embedder:
    """An :data:`Embedder` calling ``litellm.embedding`` (imported on first use)."""

    def embed(texts: Sequence[str]) -> list[list[float]]:
        prepare_litellm()
        import litellm  # start-up: litellm takes seconds to import; only embedding runs need it

        response = litellm.embedding(model=model, input=list(texts), timeout=timeout_s)
        return [
            list(item["embedding"] if isinstance(item, Mapping) else item.embedding)
            for item in response.data
        ]

    return embed
