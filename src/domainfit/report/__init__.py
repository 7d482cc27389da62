"""The report: one self-contained HTML file and a Markdown summary of a workspace."""
