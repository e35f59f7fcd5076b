"""The live engine: ``live`` (spans in, findings out, on one worker thread), ``delivery``
(findings to the store, then each sink) and ``defaults`` (the monitors a run gets)."""
