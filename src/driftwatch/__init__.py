"""driftwatch: a long-horizon agentic drift monitor.

The package is laid out as the pipeline (see docs/architecture.md): ``core`` → ``scenario`` →
``sandbox`` → ``model`` → ``agent`` → ``tracing`` → ``store`` → ``monitor`` → ``alert`` →
``cli``. Importing this package imports nothing heavy.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
