"""``domainfit version``: print the version."""

from __future__ import annotations

import typer

from domainfit import __version__


def version() -> None:
    """Print the domainfit version."""
    typer.echo(__version__)
