"""``python -m driftwatch`` is the same as the ``driftwatch`` command."""

from driftwatch.cli import main

main()
