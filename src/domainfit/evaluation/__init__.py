"""Evaluation: metrics, per-slice tables, significance and TREC run files."""
