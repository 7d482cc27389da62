"""domainfit: fit a text-embedding model to your own domain, and prove whether it was worth it."""

__version__ = "0.1.0"
