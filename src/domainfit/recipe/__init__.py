"""Recipe search: settings read from the data, a small grid of training recipes, pilots pruned on dev.

The package knows nothing of the workspace or the command line: it takes data
(token lengths, qrels, runs, examples) and callables, and returns records.
"""
