"""A generated long-document corpus for checking chunked retrieval.

Every document is a Markdown "site log" of many sections of generic filler (shift
notes, rota changes, canteen menus: nothing any query asks about) with one
relevant sentence placed deep inside, far past the first 256 tokens. Each query
asks for the fact in that sentence, naming its document's unique equipment and
site, so exactly one document is relevant. A model that reads only the beginning
of each document cannot find it; a chunked index can.

Deterministic for a given seed; no files or network needed.
"""

from __future__ import annotations

import random

from domainfit.core.types import Document, Query
from domainfit.data.beir import BeirDataset

SITES = [
    "Brackenridge",
    "Marrowfield",
    "Quillhaven",
    "Dunmere",
    "Ostrava",
    "Kelderwick",
    "Vasselby",
    "Harrowgate",
    "Pennock",
    "Tiverstone",
    "Ashcombe",
    "Larkspur",
    "Grimsvale",
    "Westholm",
    "Caddington",
    "Fennimore",
    "Oakhurst",
    "Ravensbury",
    "Selkirk",
    "Thornbury",
    "Yarrowby",
    "Elmstead",
    "Copperfield",
    "Halvorsen",
    "Innisfree",
    "Jessamine",
    "Kestrel",
    "Lindqvist",
    "Morvane",
    "Norcastle",
    "Pellinore",
    "Quarrendon",
    "Rosslare",
    "Stowmarket",
    "Tregaron",
    "Ulverston",
    "Veldhoven",
    "Whitmore",
    "Zennor",
    "Abernethy",
]
EQUIPMENT = [
    "coolant pump",
    "steam valve",
    "conveyor motor",
    "air compressor",
    "boiler feed pump",
    "cooling tower fan",
    "hydraulic press",
    "forklift battery",
    "backup generator",
    "water softener",
    "dust extractor",
    "paint booth filter",
    "loading dock leveller",
    "freight elevator",
    "sprinkler riser",
    "chiller unit",
    "kiln burner",
    "welding robot",
    "packaging sealer",
    "grain dryer",
    "vacuum pump",
    "heat exchanger",
    "fuel injector rig",
    "overhead crane",
    "glass annealer",
    "bottle washer",
    "laser cutter",
    "pallet wrapper",
    "cold store door",
    "ammonia sensor",
    "turbine gearbox",
    "slurry agitator",
    "rotary screen",
    "ink mixer",
    "sawmill blade",
    "fermentation tank",
    "bale press",
    "pipe bender",
    "spray dryer",
    "shot blaster",
]
ACTIONS = (
    ("is recalibrated every {n} days", "how often is the {eq} at the {site} plant recalibrated"),
    ("has its seals replaced after {n} operating hours", "when are the seals of the {eq} at {site} replaced"),
    ("must be inspected by two engineers every {n} weeks", "inspection interval of the {eq} at the {site} site"),
    ("is limited to {n} cycles per shift to avoid overheating", "cycle limit per shift for the {site} {eq}"),
)
_SUBJECTS = (
    "The morning shift", "The planning team", "A visiting auditor", "The night supervisor", "The site manager",
    "The catering contractor", "The safety committee", "Two apprentices", "The payroll office", "The front desk",
)  # fmt: skip
_VERBS = ("reviewed", "updated", "discussed", "postponed", "approved", "circulated", "reorganised", "checked")
_OBJECTS = (
    "the weekly rota", "the parking allocation", "the canteen menu", "the visitor badges", "the training calendar",
    "the budget forecast", "the holiday requests", "the notice board", "the stationery order", "the fire drill plan",
    "the car share list", "the newsletter draft", "the meeting room bookings", "the first aid rota",
)  # fmt: skip
_TIMES = ("before lunch", "on Tuesday", "at the end of the week", "after the briefing", "this morning", "again")
_HEADINGS = ("Shift notes", "Staffing", "Facilities", "Admin", "Visitors", "Training", "Housekeeping", "Planning")


def _filler(rng: random.Random) -> str:
    """Return one generic sentence that answers none of the queries."""
    return f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_TIMES)}."


def build_long_corpus(
    n_docs: int = 30,
    sections: int = 8,
    sentences_per_section: int = 9,
    depth: tuple[float, float] = (0.55, 0.9),
    seed: int = 7,
) -> BeirDataset:
    """Build the corpus, one query per document and ``test`` qrels.

    Inputs: number of documents (at most 40), Markdown sections per document,
    filler sentences per section (about 12 tokens each), the range of relative
    positions where the relevant sentence is placed, and the random seed.
    Output: a `BeirDataset`; each document's ``metadata["needle_char"]`` is the
    character offset of its relevant sentence.
    """
    if not 1 <= n_docs <= min(len(SITES), len(EQUIPMENT)):
        raise ValueError(f"n_docs must be between 1 and {min(len(SITES), len(EQUIPMENT))}")
    rng = random.Random(seed)
    corpus: dict[str, Document] = {}
    queries: dict[str, Query] = {}
    qrels: dict[str, dict[str, int]] = {}
    for i in range(n_docs):
        site, equipment = SITES[i], EQUIPMENT[i]
        statement, question = ACTIONS[i % len(ACTIONS)]
        needle = f"The {equipment} at the {site} plant {statement.format(n=rng.randint(3, 90))}."
        total = sections * sentences_per_section
        target = int(total * rng.uniform(*depth))
        parts: list[str] = []
        needle_char = -1
        for s in range(sections):
            parts.append(f"## {rng.choice(_HEADINGS)} {s + 1}\n\n")
            for k in range(sentences_per_section):
                position = s * sentences_per_section + k
                if position == target:
                    needle_char = sum(len(p) for p in parts)
                    parts.append(needle + " ")
                parts.append(_filler(rng) + (" " if k % 3 != 2 else "\n\n"))
        did, qid = f"log{i:03d}", f"q{i:03d}"
        text = "".join(parts).strip()
        corpus[did] = Document(id=did, title=f"Site log {i + 1}", text=text, metadata={"needle_char": needle_char})
        queries[qid] = Query(id=qid, text=question.format(eq=equipment, site=site))
        qrels[qid] = {did: 1}
    return BeirDataset(corpus=corpus, queries=queries, qrels={"test": qrels})
