"""Offline generators on hand-made documents: titles, headings, inverse cloze, salient keyword queries."""

from __future__ import annotations

import re

import pytest

from domainfit.core.types import Document
from domainfit.data.splits import normalise_text
from domainfit.synth.offline import ClozeGenerator, HeadingGenerator, SalientGenerator, TitleGenerator, informative
from domainfit.synth.textparse import find_identifiers, sentence_spans, split_sections

MARKDOWN = """# Deployment handbook

Everything about shipping the billing service.

## Rolling back a release
Run `deployctl rollback --to v2.3.1` and watch the canary dashboard for five minutes.

```bash
# Not a heading: a comment inside a code block
deployctl status
```

### Examples
deployctl rollback --to v2.3.0 restores the previous build.

## Feature flags
Flags are evaluated by the flagd sidecar; stale flags are removed every sprint.
"""

RST = """===============
Storage quotas
===============

Intro paragraph about storage.

Quota exceeded errors
---------------------
Uploads fail with QUOTA_409 once a bucket exceeds its quota; ask for more space.

Archive tier
~~~~~~~~~~~~
Objects move to the archive tier after ninety days without access.

Presigned links
---------------
A presigned URL grants temporary access and expires after seven days at most.
"""

HTML = (
    "<h1>Network guide</h1><p>Overview of the network.</p>"
    "<h2>VPC <em>peering</em> routes</h2><p>Peering needs route table entries on both sides &amp; a firewall rule.</p>"
    "<h2>Introduction</h2><p>This heading is generic and must be skipped by the generator.</p>"
    "<h2>DNS TTL propagation</h2><p>Changes propagate as cached records expire according to their TTL.</p>"
)

PROSE = (
    "Login fails with ERR_AUTH_702 when the session token has expired. "
    "Refresh the token with os.path.join style helpers from the SDK v2.3.1 release. "
    "Administrators can raise the session lifetime in the security settings page. "
    "Product code SKU-1234 covers the enterprise single sign-on add-on."
)


def corpus() -> list[Document]:
    return [
        Document("auth", PROSE, title="ERR_AUTH_702 session token expired"),
        Document("deploy", MARKDOWN, title="Deployment handbook"),
        Document("storage", RST, title="Storage quotas"),
        Document("network", HTML, title="Network guide"),
        Document("intro", "A short welcome text for new staff joining the company.", title="Introduction"),
        Document("ts1", "Restart the agent when metrics stop arriving at the collector.", title="Troubleshooting"),
        Document("ts2", "Clear the browser cache when the dashboard shows stale charts.", title="Troubleshooting"),
        Document("untitled", "Rotate SSH keys by adding the new public key before removing the old one."),
    ]


# ----------------------------------------------------------------------------- title


def test_title_generator_uses_informative_unshared_titles_with_the_body_as_positive():
    docs = corpus()
    gen = TitleGenerator()
    gen.fit(docs)
    queries = gen.generate(docs)
    by_doc = {q.doc_id: q for q in queries}
    assert set(by_doc) == {"auth", "deploy", "storage", "network"}  # generic, shared and missing titles skipped
    assert by_doc["auth"].text == "ERR_AUTH_702 session token expired"
    assert by_doc["auth"].positive_text == PROSE and by_doc["auth"].source == "title"
    assert gen.get_config_dict()["name"] == "title"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Introduction", False), ("Page 3", False), ("the of and", False), ("", False), ("VPC peering", True)],
)
def test_informative(text, expected):
    assert informative(text) is expected


# ----------------------------------------------------------------------------- headings


def test_split_sections_markdown_ignores_code_fences_and_nests_levels():
    sections = split_sections(MARKDOWN)
    assert [(s.heading, s.level) for s in sections] == [
        ("Deployment handbook", 1),
        ("Rolling back a release", 2),
        ("Examples", 3),
        ("Feature flags", 2),
    ]
    rollback = sections[1]
    assert "deployctl rollback --to v2.3.1" in rollback.body and "v2.3.0" in rollback.body  # subsection included
    assert "Feature flags" not in rollback.body and "flagd" not in rollback.body


def test_split_sections_rst_with_overline_and_levels():
    sections = split_sections(RST)
    assert [(s.heading, s.level) for s in sections] == [
        ("Storage quotas", 1),
        ("Quota exceeded errors", 2),
        ("Archive tier", 3),
        ("Presigned links", 2),
    ]
    assert sections[2].body == "Objects move to the archive tier after ninety days without access."
    assert "Archive tier" in sections[1].body and "Presigned" not in sections[1].body


def test_split_sections_html_strips_tags_and_entities():
    sections = split_sections(HTML)
    assert [s.heading for s in sections] == [
        "Network guide",
        "VPC peering routes",
        "Introduction",
        "DNS TTL propagation",
    ]
    assert sections[1].body == "Peering needs route table entries on both sides & a firewall rule."


def test_heading_generator_pairs_headings_with_their_sections():
    queries = HeadingGenerator(min_section_words=5).generate(corpus())
    pairs = {(q.doc_id, q.text): q.positive_text for q in queries}
    assert set(pairs) == {
        ("deploy", "Rolling back a release"),
        ("deploy", "Feature flags"),
        ("storage", "Quota exceeded errors"),
        ("storage", "Archive tier"),
        ("storage", "Presigned links"),
        ("network", "VPC peering routes"),
        ("network", "DNS TTL propagation"),
    }  # the title headings, generic "Examples"/"Introduction" and short sections are skipped
    assert pairs[("storage", "Presigned links")].startswith("A presigned URL grants temporary access")
    assert all(q.source == "heading" for q in queries)


def test_heading_generator_caps_headings_per_document():
    queries = HeadingGenerator(max_per_document=1).generate(corpus())
    assert [q.doc_id for q in queries] == ["deploy", "storage", "network"]


# ----------------------------------------------------------------------------- cloze


def test_sentence_spans_keep_wrapped_lines_and_split_after_signatures():
    text = "read(self, size=-1)\nIf the argument is omitted, reads\nall data until EOF. See e.g. the docs.\n\nDone."
    sentences = [text[a:b] for a, b in sentence_spans(text)]
    assert sentences == [
        "read(self, size=-1)",
        "If the argument is omitted, reads\nall data until EOF.",
        "See e.g. the docs.",
        "Done.",
    ]


def test_cloze_query_is_a_sentence_and_the_positive_is_the_passage_without_it():
    doc = Document("auth", PROSE, title="Auth")
    queries = ClozeGenerator(per_document=2, seed=1).generate([doc])
    assert len(queries) == 2
    for query in queries:
        assert query.text in PROSE and query.source == "cloze"
        assert query.text not in query.positive_text
        assert query.positive_text.startswith("Auth\n")
        rest = query.positive_text.removeprefix("Auth\n")
        assert normalise_text(rest + " " + query.text).split().__len__() == len(normalise_text(PROSE).split())


def test_cloze_is_deterministic_under_a_seed_and_varies_across_seeds():
    doc = Document("auth", PROSE)
    picks = {seed: ClozeGenerator(seed=seed).generate([doc])[0].text for seed in range(12)}
    assert ClozeGenerator(seed=3).generate([doc])[0].text == picks[3]
    assert len(set(picks.values())) >= 2


def test_cloze_skips_single_sentence_documents_and_code():
    docs = [Document("one", "Only one sentence lives here."), Document("code", ">>> x = compute(1)\n>>> print(x)")]
    assert ClozeGenerator().generate(docs) == []


# ----------------------------------------------------------------------------- salient


def test_find_identifiers():
    text = (
        "Use os.path.join() with ERR_AUTH_702, upgrade to v2.3.1 or 1.4.0-rc1, order SKU-1234 or ISO9001; "
        "BufferedIOBase has max_line_bytes and readInto, e.g. in config.yaml. Version 3.11 is plain."
    )
    assert find_identifiers(text) == [
        "os.path.join",
        "ERR_AUTH_702",
        "v2.3.1",
        "1.4.0-rc1",
        "SKU-1234",
        "ISO9001",
        "BufferedIOBase",
        "max_line_bytes",
        "readInto",
        "config.yaml",
    ]


def test_salient_queries_are_short_keyword_queries_with_identifiers():
    docs = corpus()
    gen = SalientGenerator(per_document=2, seed=13)
    gen.fit(docs)
    queries = gen.generate(docs)
    assert {q.doc_id for q in queries} >= {"auth", "deploy", "storage", "network"}
    for query in queries:
        words = query.text.split()
        assert 2 <= len(words) <= 5, query.text
        doc_text = next(d for d in docs if d.id == query.doc_id).full_text().lower()
        assert all(w.lower() in doc_text for w in words), query.text  # every word comes from the document
    auth = [q.text for q in queries if q.doc_id == "auth"]
    assert any("ERR_AUTH_702" in t for t in auth)  # the rarest identifier leads the first query
    storage = [q.text for q in queries if q.doc_id == "storage"]
    assert any("QUOTA_409" in t for t in storage)
    assert not any(re.search(r"\b(the|and|of)\b", q.text) for q in queries)  # stop words never make it


def test_salient_is_deterministic_under_a_seed():
    docs = corpus()

    def run(seed):
        gen = SalientGenerator(seed=seed)
        gen.fit(docs)
        return [(q.doc_id, q.text) for q in gen.generate(docs)]

    assert run(5) == run(5)
    assert run(5) != run(6)
