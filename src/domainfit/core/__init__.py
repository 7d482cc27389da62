"""Shared foundations: errors, types, atomic files, the workspace, progress and model resolution."""
