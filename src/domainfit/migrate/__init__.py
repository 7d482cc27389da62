"""Model migration: compare the old and new version on the same queries, gate the switch, bridge the gap.

Pure functions over plain inputs; nothing here reads the workspace.
`domainfit.migrate.compare` holds the dual run and the go/no-go gate,
`domainfit.migrate.bridge` the query-side map from the new model into the old
document vectors' space, with its retention measure.
"""
