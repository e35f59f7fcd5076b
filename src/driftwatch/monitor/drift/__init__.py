"""Behaviour over a run's turns: ``adherence`` (change points in rule violations),
``goal`` (what the agent does against its initial instructions), ``repetition`` (the
agent doing the same thing over and over) and ``sandbagging`` (accuracy below what it
should be)."""
