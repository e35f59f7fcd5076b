"""The typer command-line app."""

from driftwatch.cli.app import app, main

__all__ = ["app", "main"]
