"""Say–do: ``claims`` (first-person claims found in an agent's text and the tool calls
that would contradict them), ``state`` (what the monitor remembers of a run) and ``gap``
(the monitor)."""
