"""The rule-pack language: one YAML file a pack, its sections listed once in
:mod:`~driftwatch.monitor.rules.sections`.

- ``sections``: the table of sections (``rules``, ``sequences``, ``windows``,
  ``final_state``) and what each holds;
- ``sequence_spec``, ``window_spec``: the YAML models of the rule kinds;
- ``pack``: a pack file, loading with line-numbered errors, discovery;
- ``sequence``, ``window``, ``stateful``: sequence and window rules at runtime;
- ``rulepack``: the rule-pack monitor that runs all of it.

The SQL of a rule is evaluated by the store (``driftwatch.store.predicates``,
``pairs``, ``final_state``): the store is the one package that imports DuckDB.
"""
