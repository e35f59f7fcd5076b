"""driftwatch: a long-horizon agentic drift monitor.

The package is laid out as the pipeline, each package importing only the layers below
it: ``core`` → ``store`` → ``tracing`` | ``scenario`` | ``stats`` → ``sandbox`` → ``model`` →
``agent`` | ``monitor`` → ``alert`` → ``runner`` → ``batch`` | ``collector`` | ``importers`` →
``report`` → ``cli``. docs/architecture.md is the map (and where a new monitor, importer,
sink or scenario goes); ``lint-imports`` checks the layers. Importing this package imports
nothing heavy.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
