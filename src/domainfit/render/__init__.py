"""Rendering of stage results: terminal tables, Markdown summaries and the HTML report."""
