"""Settings of the search service: ``[serve]`` (address, caps, query log).

Unknown keys are errors (``extra="forbid"``). The bearer token itself is never
part of the config: it comes from the file named by ``token_file`` (or
``--token-file``) or from the environment variable ``token_env``, and the
service keeps only its SHA-256 hash. Example::

    [serve]
    host = "127.0.0.1"      # any other address needs a token
    port = 8000
    max_k = 100
    max_query_chars = 2048
    max_batch = 64
    max_body_bytes = 1048576
    query_log = "queries.jsonl"
    shadow_queue = 64       # serve --shadow: searches waiting for the shadow version
    follow_pointer = true   # a promote or rollback switches the running service
    pointer_poll_ms = 500
    judgements = "judged"   # turns on GET /compare; judgements go to this BEIR folder
    judgements_split = "test"
    bridge = false          # serve --bridge: new-model queries through migrate bridge's map
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domainfit.data.checks import split_name_problem

#: The environment variable read for the bearer token when no token file is given.
TOKEN_ENV = "DOMAINFIT_SERVE_TOKEN"

SearchMode = Literal["dense", "bm25", "hybrid"]


class ServeConfig(BaseModel):
    """The ``[serve]`` section: where the service listens and what one request may ask for."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    host: str = Field("127.0.0.1", min_length=1, description="address to bind; non-loopback needs a token")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0: any free port)")
    token_file: str | None = Field(None, description="file holding the bearer token (first line)")
    token_env: str = Field(TOKEN_ENV, min_length=1, description="environment variable holding the bearer token")
    default_k: int = Field(10, ge=1, description="results returned when a search does not say k")
    max_k: int = Field(100, ge=1, le=10_000, description="largest k a search may ask for (422 above)")
    default_mode: SearchMode | None = Field(
        None, description="search mode when a request does not say (unset: the index's)"
    )
    max_query_chars: int = Field(2048, ge=1, description="longest query or /embed input, in characters (422 above)")
    max_batch: int = Field(64, ge=1, description="most inputs one /embed request may carry (413 above)")
    max_body_bytes: int = Field(1 << 20, ge=256, description="largest request body in bytes (413 above)")
    max_filters: int = Field(16, ge=0, description="most metadata filters one search may carry (422 above)")
    query_log: str | None = Field(None, description="JSONL file every search is appended to (off when unset)")
    min_score: float | None = Field(
        None, description="default dense min_score; unset: calibrate's threshold for the served model"
    )
    shadow_queue: int = Field(64, ge=1, le=100_000, description="searches waiting for the shadow (dropped above)")
    shadow_log: str | None = Field(None, description="JSONL file of shadow comparisons (default: beside the query log)")
    follow_pointer: bool = Field(True, description="switch to the production pointer when it is replaced")
    pointer_poll_ms: int = Field(500, ge=10, le=600_000, description="milliseconds between two looks at the pointer")
    bridge: bool = Field(
        False,
        description="embed queries with the migration's new model and search production's vectors through "
        "the map `migrate bridge` fitted (until the new version is promoted)",
    )

    judgements: str | None = Field(
        None, description="BEIR folder the /compare page appends judgements to (the page is off when unset)"
    )
    judgements_split: str = Field("test", description="qrels split the judgements go to (qrels/<split>.tsv)")

    @field_validator("judgements_split")
    @classmethod
    def _split_name(cls, value: str) -> str:
        """Refuse a split name that cannot be the file name ``qrels/<split>.tsv``."""
        problem = split_name_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _default_k_within_cap(self) -> ServeConfig:
        """``default_k`` may not exceed ``max_k``."""
        if self.default_k > self.max_k:
            raise ValueError(f"default_k {self.default_k} is larger than max_k {self.max_k}")
        return self
