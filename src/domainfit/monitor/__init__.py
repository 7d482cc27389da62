"""Monitoring of a search service: drift of the query stream against a reference window, and canary checks.

Pure functions over plain inputs (numpy arrays, query texts, runs and qrels);
nothing here reads the workspace. `domainfit.monitor.drift.drift_report`
compares two `QueryWindow` objects, `domainfit.monitor.canary.canary_check`
scores canary queries against a recorded baseline, and
`domainfit.monitor.verdict.decide` turns both into one healthy/alert verdict.
"""
