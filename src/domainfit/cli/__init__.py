"""The command line: the Typer app, error mapping in one place and one module per command."""

from domainfit.cli.app import app, main

__all__ = ["app", "main"]
