"""A small synthetic product catalogue for measuring domain-specific similarity.

`build_structured_demo` returns a `BeirDataset` whose documents carry structured
fields and whose queries each need one of them:

* products: ``title`` (brand, model code, product noun), ``text`` (a marketing
  body that also names competing models), ``attributes`` (colour, material and a
  category-specific spec; not part of ``title``/``text``), ``date`` (release
  date, ISO) and ``category`` (a three-level path ``"Home > Kitchen > Blenders"``);
* warranty terms: three dated revisions of the same document per product
  series, near-identical in wording, under ``"Support > Warranty"``.

Query kinds (metadata ``kind``; ``level`` is ``coarse`` or ``fine``):

* ``title``: the brand and model code ("Auralis QX-50"); other products'
  bodies mention the same code, so the title field is the reliable signal;
* ``attribute``: colour, product noun and spec ("red blenders with 1.5 l jar");
  only the attributes field tells the five products of a category apart;
* ``latest``: "current warranty terms for ..."; only the newest revision is relevant;
* ``coarse``: a category ("kitchen appliances"); every product under it is relevant.

Every query has an explicit ``family`` (its leaf category, or the category node
of a coarse query), and families never cross the ``dev``/``test`` split.
Generation is deterministic for a given seed.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from domainfit.core.types import Document, Qrels, Query
from domainfit.data.beir import BeirDataset


@dataclass(frozen=True)
class _Leaf:
    """One leaf category: its path, product noun, body phrases, spec and coarse queries."""

    path: tuple[str, str, str]
    singular: str
    plural: str
    uses: tuple[str, ...]
    features: tuple[str, ...]
    spec_name: str
    spec_values: tuple[str, ...]
    spec_phrase: str  # "with {value}" rendering for queries
    queries: tuple[str, ...]


LEAVES: tuple[_Leaf, ...] = (
    _Leaf(("Electronics", "Audio", "Headphones"), "headphones", "headphones",
          ("commuting", "long flights", "studio monitoring", "the gym"),
          ("Active noise cancelling blocks engine hum", "Memory-foam ear cushions stay comfortable for hours",
           "A fold-flat design slips into a bag", "Multipoint Bluetooth pairs with two devices"),
          "battery", ("20 h battery", "30 h battery", "40 h battery", "50 h battery", "60 h battery"),
          "with a {value}", ("headphones", "over-ear headphones and earbuds")),
    _Leaf(("Electronics", "Audio", "Speakers"), "speaker", "speakers",
          ("the living room", "garden parties", "the kitchen", "a home cinema"),
          ("A passive radiator deepens the bass", "Stereo pairing links two units",
           "The water-resistant shell survives rain", "Room calibration tunes the sound"),
          "output", ("10 W output", "20 W output", "40 W output", "60 W output", "100 W output"),
          "with {value}", ("loudspeakers for the home", "wireless speakers")),
    _Leaf(("Electronics", "Computing", "Laptops"), "laptop", "laptops",
          ("students", "software developers", "business travel", "photo editing"),
          ("An aluminium chassis keeps it light", "The backlit keyboard has deep key travel",
           "Two USB-C ports support fast charging", "A matte display reduces glare"),
          "memory", ("8 GB memory", "16 GB memory", "24 GB memory", "32 GB memory", "64 GB memory"),
          "with {value}", ("notebook computers", "portable computers for work")),
    _Leaf(("Electronics", "Computing", "Monitors"), "monitor", "monitors",
          ("gaming", "office work", "colour grading", "a second screen"),
          ("A height-adjustable stand tilts and swivels", "Thin bezels suit multi-screen setups",
           "A USB hub is built into the base", "Flicker-free backlight is easy on the eyes"),
          "screen", ("24 inch screen", "27 inch screen", "32 inch screen", "34 inch screen", "49 inch screen"),
          "with a {value}", ("computer screens and displays", "desktop monitors")),
    _Leaf(("Home", "Kitchen", "Coffee machines"), "coffee machine", "coffee machines",
          ("espresso lovers", "busy offices", "small kitchens", "latte art"),
          ("A steam wand froths milk", "The built-in grinder has 15 settings",
           "Pre-infusion extracts evenly", "A removable tank makes refilling easy"),
          "pressure", ("9 bar pump", "12 bar pump", "15 bar pump", "19 bar pump", "20 bar pump"),
          "with a {value}", ("espresso and coffee makers", "machines for brewing coffee")),
    _Leaf(("Home", "Kitchen", "Blenders"), "blender", "blenders",
          ("smoothies", "soups", "crushing ice", "nut butters"),
          ("Stainless blades pulverise frozen fruit", "A tamper pushes thick mixes down",
           "Preset programs stop automatically", "The jar is dishwasher safe"),
          "jar", ("1 l jar", "1.5 l jar", "2 l jar", "2.5 l jar", "3 l jar"),
          "with a {value}", ("blenders for smoothies", "kitchen blenders and mixers")),
    _Leaf(("Home", "Garden", "Lawn mowers"), "lawn mower", "lawn mowers",
          ("small lawns", "large gardens", "uneven ground", "quiet weekends"),
          ("Mulching returns clippings to the soil", "A height lever sets seven cutting levels",
           "The folding handle stores upright", "Self-propelled drive climbs slopes"),
          "cutting width", ("32 cm cutting width", "37 cm cutting width", "42 cm cutting width",
                            "46 cm cutting width", "51 cm cutting width"),
          "with a {value}", ("lawn mowers", "machines for cutting grass")),
    _Leaf(("Home", "Garden", "Garden hoses"), "garden hose", "garden hoses",
          ("watering beds", "washing cars", "patios", "greenhouses"),
          ("An expandable core shrinks when empty", "Kink-resistant layers keep water flowing",
           "Brass fittings do not corrode", "A spray nozzle has eight patterns"),
          "length", ("10 m length", "15 m length", "20 m length", "30 m length", "50 m length"),
          "of {value}", ("garden watering hoses", "hoses for the garden")),
    _Leaf(("Sports", "Cycling", "Bicycles"), "bicycle", "bicycles",
          ("city commuting", "gravel roads", "mountain trails", "long tours"),
          ("Hydraulic disc brakes stop in the wet", "A carbon fork absorbs road buzz",
           "Internal cable routing keeps it tidy", "Wide tyres grip loose surfaces"),
          "gears", ("8 gears", "11 gears", "12 gears", "22 gears", "24 gears"),
          "with {value}", ("bikes", "bicycles for riding")),
    _Leaf(("Sports", "Cycling", "Bike helmets"), "bike helmet", "bike helmets",
          ("road racing", "urban riding", "mountain biking", "children"),
          ("MIPS liner reduces rotational forces", "Twenty vents keep the head cool",
           "A rear light clips onto the strap", "The dial fit adjusts with one hand"),
          "size", ("size S", "size M", "size L", "size XL", "one size"),
          "in {value}", ("cycling helmets", "helmets for cyclists")),
    _Leaf(("Sports", "Running", "Running shoes"), "running shoe", "running shoes",
          ("marathon training", "trail running", "daily jogging", "track intervals"),
          ("A foam midsole returns energy", "A rock plate protects on trails",
           "The knit upper breathes", "A wide toe box lets toes splay"),
          "drop", ("0 mm drop", "4 mm drop", "6 mm drop", "8 mm drop", "10 mm drop"),
          "with {value}", ("running shoes", "trainers for runners")),
    _Leaf(("Sports", "Running", "Sports watches"), "sports watch", "sports watches",
          ("triathletes", "hikers", "runners", "swimmers"),
          ("Dual-band GPS tracks accurately", "An optical sensor measures heart rate",
           "Offline maps guide on trails", "Training load advice plans recovery"),
          "battery", ("7 day battery", "10 day battery", "14 day battery", "21 day battery", "30 day battery"),
          "with a {value}", ("GPS sports watches", "watches for training")),
)  # fmt: skip

#: Coarse queries of the middle and top levels (two paraphrases for each middle node).
NODE_QUERIES: dict[tuple[str, ...], tuple[str, ...]] = {
    ("Electronics", "Audio"): ("audio equipment", "sound systems and listening gear"),
    ("Electronics", "Computing"): ("computer hardware", "computing equipment"),
    ("Home", "Kitchen"): ("kitchen appliances", "small appliances for cooking"),
    ("Home", "Garden"): ("gardening tools and equipment", "products for the garden"),
    ("Sports", "Cycling"): ("cycling gear", "equipment for cyclists"),
    ("Sports", "Running"): ("running gear", "equipment for runners"),
    ("Electronics",): ("consumer electronics",),
    ("Home",): ("home and garden products",),
    ("Sports",): ("sports equipment",),
}

BRANDS = (
    "Auralis", "Veltro", "Kestrel", "Nimbus", "Orvane", "Sable", "Quorra", "Lumetra", "Brisk", "Tandor",
    "Helio", "Marlo", "Corvel", "Danuvo", "Eskar", "Fennic", "Galvo", "Ilmar", "Jorvik", "Kavex",
)  # fmt: skip
COLOURS = ("black", "white", "red", "blue", "green", "grey", "yellow", "orange")
MATERIALS = ("aluminium", "recycled plastic", "stainless steel", "woven fabric", "carbon fibre")
WARRANTY_PATH = "Support > Warranty"


def _date(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    """Return a random date between ``start`` and ``end`` (inclusive)."""
    return start + dt.timedelta(days=rng.randrange((end - start).days + 1))


class _Builder:
    """Accumulates documents, queries and qrels while the catalogue is generated."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.corpus: dict[str, Document] = {}
        self.queries: dict[str, Query] = {}
        self.qrels: dict[str, Qrels] = {"dev": {}, "test": {}}
        self.under: dict[tuple[str, ...], list[str]] = {}
        self.codes: set[str] = set()
        self.counts: dict[str, int] = {}

    def query(self, kind: str, text: str, relevant: list[str], family: str, split: str, level: str) -> None:
        """Add one query (id ``q-<kind>-NNN``) judging every ``relevant`` document 1 in ``split``."""
        self.counts[kind] = self.counts.get(kind, 0) + 1
        qid = f"q-{kind}-{self.counts[kind]:03d}"
        self.queries[qid] = Query(id=qid, text=text, metadata={"kind": kind, "level": level, "family": family})
        self.qrels[split][qid] = dict.fromkeys(relevant, 1)

    def names(self, n: int) -> list[tuple[str, str]]:
        """Draw ``n`` (brand, unique model code) pairs."""
        letters = "ABCDEFGHJKLMNPRSTVWXZ"
        out: list[tuple[str, str]] = []
        while len(out) < n:
            code = f"{self.rng.choice(letters)}{self.rng.choice(letters)}-{self.rng.randrange(10, 99)}"
            if code not in self.codes:
                self.codes.add(code)
                out.append((self.rng.choice(BRANDS), code))
        return out

    def products(self, leaf: _Leaf, names: list[tuple[str, str]], split: str) -> list[str]:
        """Add one product per name with its title and attribute queries; returns the document ids."""
        rng, family = self.rng, " > ".join(leaf.path)
        colours = rng.sample(COLOURS, len(names))
        specs = rng.sample(leaf.spec_values, len(names))
        ids: list[str] = []
        for n, (brand, code) in enumerate(names):
            did = f"p{len(self.corpus) + 1:03d}"
            ids.append(did)
            rivals = rng.sample([f"{b} {c}" for b, c in names if c != code], min(2, len(names) - 1))
            body = (
                f"{rng.choice(('Dependable', 'Premium', 'Compact', 'Versatile'))} {leaf.singular} made for "
                f"{rng.choice(leaf.uses)}. {'. '.join(rng.sample(leaf.features, 2))}. "
                + (f"Reviewers often compare it with the {' and the '.join(rivals)}. " if rivals else "")
                + "Ships with a quick-start guide and a two-year limited warranty."
            )
            self.corpus[did] = Document(
                id=did,
                title=f"{brand} {code} {leaf.singular}",
                text=body,
                metadata={
                    "attributes": {"colour": colours[n], "material": rng.choice(MATERIALS), leaf.spec_name: specs[n]},
                    "date": _date(rng, dt.date(2019, 1, 1), dt.date(2024, 5, 31)).isoformat(),
                    "category": family,
                },
            )
            self.query("title", f"{brand} {code}", [did], family, split, "fine")
            spec_text = leaf.spec_phrase.format(value=specs[n])
            self.query("attribute", f"{colours[n]} {leaf.plural} {spec_text}", [did], family, split, "fine")
        for depth in range(1, len(leaf.path) + 1):
            self.under.setdefault(leaf.path[:depth], []).extend(ids)
        return ids

    def series(self, leaf: _Leaf, n: int, brand: str, code: str, revisions: int, split: str) -> None:
        """Add yearly revisions of one product's warranty terms and a query whose answer is the newest."""
        first = _date(self.rng, dt.date(2020, 1, 1), dt.date(2021, 6, 30))
        order = list(range(revisions))
        self.rng.shuffle(order)  # ids do not follow revisions, so id-based tie-breaking cannot find the newest
        newest = ""
        for r in order:
            did = f"w{len(self.corpus) + 1:03d}"
            newest = did if r == revisions - 1 else newest
            when = dt.date(first.year + r, first.month, min(first.day, 28))
            months = 12 + 12 * ((n + r) % 2)
            self.corpus[did] = Document(
                id=did,
                title=f"{brand} {code} warranty terms",
                text=(
                    f"Warranty terms for the {brand} {code} {leaf.singular}, revision {r + 1}. "
                    f"The warranty covers manufacturing defects for {months} months from the date of "
                    f"purchase. Claims need the original receipt and the serial number."
                ),
                metadata={"date": when.isoformat(), "category": WARRANTY_PATH},
            )
        family = " > ".join(leaf.path)
        self.query("latest", f"current warranty terms for the {brand} {code}", [newest], family, split, "fine")


def build_structured_demo(
    products_per_leaf: int = 5,
    series_per_leaf: int = 2,
    revisions: int = 3,
    seed: int = 13,
    leaves: int | None = None,
) -> BeirDataset:
    """Build the synthetic catalogue (see the module docstring).

    Inputs: products per leaf category (<= 5, one per spec value), warranty
    series per leaf (<= products_per_leaf), revisions per series, the random
    seed and optionally how many leaf categories to use (default all 12; use an
    even number so both splits get leaves). Output: a `BeirDataset` with
    ``dev`` and ``test`` qrels.
    """
    if not 1 <= products_per_leaf <= 5 or not 0 <= series_per_leaf <= products_per_leaf or revisions < 1:
        raise ValueError("need 1 <= products_per_leaf <= 5, series_per_leaf <= products_per_leaf, revisions >= 1")
    build = _Builder(random.Random(seed))
    for leaf_index, leaf in enumerate(LEAVES[: leaves or len(LEAVES)]):
        split = "dev" if leaf_index % 2 == 0 else "test"  # each middle node gets one leaf of each
        names = build.names(products_per_leaf)
        ids = build.products(leaf, names, split)
        for n, (brand, code) in enumerate(names[:series_per_leaf]):
            build.series(leaf, n, brand, code, revisions, split)
        for text in leaf.queries:
            build.query("coarse", text, ids, " > ".join(leaf.path), split, "coarse")
    middle: list[tuple[str, ...]] = [node for node in NODE_QUERIES if len(node) == 2 and node in build.under]
    top: list[tuple[str, ...]] = [node for node in NODE_QUERIES if len(node) == 1 and node in build.under]
    for node_index, node in enumerate(middle + top):
        split = "dev" if node_index % 2 == 0 else "test"
        for text in NODE_QUERIES[node]:
            build.query("coarse", text, build.under[node], " > ".join(node), split, "coarse")
    return BeirDataset(corpus=build.corpus, queries=build.queries, qrels=build.qrels)
