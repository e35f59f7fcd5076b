"""The optional LLM judge of a run's recent turns (``judge``)."""
