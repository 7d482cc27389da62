"""The search service: a FastAPI application over an opened serving index (`create_app`).

`app` builds the application, `service` answers its endpoints over plain
inputs, `auth` checks the bearer token, `limits` caps request bodies,
`metrics` counts in Prometheus form, `querylog` writes the optional JSONL log
of searches, `encoder` embeds queries and `server` runs it under uvicorn on
an address `auth.check_bind` allows. The package knows nothing of the
workspace: ``domainfit serve`` (`domainfit.cli.serve`) resolves the index,
model and threshold and hands them over.
"""
