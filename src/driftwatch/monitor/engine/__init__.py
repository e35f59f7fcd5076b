"""The live engine: ``build`` (the one way to make an engine from an ``EngineConfig``),
``live`` (spans in, findings out, on one worker thread), ``delivery`` (findings to the
store, then each sink) and ``defaults`` (the monitors a run gets, as keyword arguments)."""
