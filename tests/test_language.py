"""Language identification, the language and cross-language slices, and a bench run on mixed-language data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from domainfit.config import BenchConfig
from domainfit.core.errors import UsageError
from domainfit.core.types import Document, Query
from domainfit.core.workspace import Workspace
from domainfit.data.beir import BeirDataset, load_beir, write_beir
from domainfit.evaluation.systems import SystemRunner, profile_languages
from domainfit.stages.bench import run_bench
from domainfit.text.config import TextConfig
from domainfit.text.language import (
    UNDETERMINED,
    LanguageDetector,
    known_languages,
    language_profile,
    language_slice_labels,
    wants_language_slices,
)

# (language, query, document title, document text): one relevant document per query, in the query's language
ITEMS = [
    ("en", "How do I reset my password?", "Password reset",
     "To reset a password, open the account page and request a reset link by email."),
    ("en", "Where can I download my invoices?", "Invoices",
     "Invoices can be downloaded as PDF files from the billing history page."),
    ("en", "Why does my upload fail when the bucket is full?", "Storage quota",
     "Uploads fail once a storage bucket exceeds its quota; delete old objects or raise the quota."),
    ("en", "How do I open the firewall for web traffic?", "Firewall rules",
     "Open TCP port 443 in the firewall to allow HTTPS traffic to the service."),
    ("de", "Wie setze ich mein Passwort zurück?", "Passwort zurücksetzen",
     "Um ein Passwort zurückzusetzen, öffnen Sie die Kontoseite und fordern Sie einen Link per E-Mail an."),
    ("de", "Wo kann ich meine Rechnungen herunterladen?", "Rechnungen",
     "Rechnungen können auf der Seite mit dem Abrechnungsverlauf als PDF-Datei heruntergeladen werden."),
    ("de", "Warum schlägt der Upload fehl, wenn der Speicher voll ist?", "Speicherkontingent",
     "Uploads schlagen fehl, sobald ein Speicher sein Kontingent überschreitet; löschen Sie alte Objekte."),
    ("de", "Wie öffne ich die Firewall für den Webverkehr?", "Firewall-Regeln",
     "Öffnen Sie den TCP-Port 443 in der Firewall, damit HTTPS-Verkehr den Dienst erreicht."),
    ("fr", "Comment réinitialiser mon mot de passe ?", "Réinitialiser le mot de passe",
     "Pour réinitialiser un mot de passe, ouvrez la page du compte et demandez un lien par courriel."),
    ("fr", "Où puis-je télécharger mes factures ?", "Factures",
     "Les factures peuvent être téléchargées au format PDF depuis la page de l'historique de facturation."),
    ("fr", "Pourquoi mon envoi échoue-t-il quand le stockage est plein ?", "Quota de stockage",
     "Les envois échouent dès qu'un espace de stockage dépasse son quota ; supprimez les anciens objets."),
    ("fr", "Comment ouvrir le pare-feu pour le trafic web ?", "Règles du pare-feu",
     "Ouvrez le port TCP 443 dans le pare-feu pour laisser passer le trafic HTTPS vers le service."),
]  # fmt: skip
# queries whose relevant document is in another language
CROSS = [
    ("x1", "Wie lade ich meine Rechnungen als PDF herunter?", "d02"),  # German query, English invoice page
    ("x2", "Comment puis-je ouvrir le port du pare-feu ?", "d04"),  # French query, English firewall page
]


def mixed_dataset() -> BeirDataset:
    """Twelve documents and queries in English, German and French, plus two cross-language queries."""
    corpus, queries, qrels = {}, {}, {}
    for n, (lang, query, title, text) in enumerate(ITEMS, start=1):
        did, qid = f"d{n:02d}", f"q{n:02d}"
        corpus[did] = Document(did, text, title)
        queries[qid] = Query(qid, query, {"expected": lang})
        qrels[qid] = {did: 1}
    for qid, query, did in CROSS:
        queries[qid] = Query(qid, query, {"expected": "cross"})
        qrels[qid] = {did: 1}
    return BeirDataset(corpus=corpus, queries=queries, qrels={"test": qrels})


def english_dataset() -> BeirDataset:
    """The English part of `mixed_dataset` only."""
    data = mixed_dataset()
    numbers = [n for n, item in enumerate(ITEMS, start=1) if item[0] == "en"]
    corpus = {f"d{n:02d}": data.corpus[f"d{n:02d}"] for n in numbers}
    queries = {f"q{n:02d}": data.queries[f"q{n:02d}"] for n in numbers}
    qrels = {qid: data.qrels["test"][qid] for qid in queries}
    return BeirDataset(corpus=corpus, queries=queries, qrels={"test": qrels})


# -- the detector --------------------------------------------------------------------------------


@pytest.mark.parametrize(("lang", "query", "title", "text"), ITEMS)
def test_detects_documents_and_questions(lang: str, query: str, title: str, text: str) -> None:
    detector = LanguageDetector()
    assert detector.language(f"{title}\n{text}") == lang
    assert detector.language(query) == lang


@pytest.mark.parametrize("text", ["", "ok", "42 / 7", "os.path.join", "reset password", "!!!"])
def test_short_or_ambiguous_text_is_undetermined(text: str) -> None:
    guess = LanguageDetector().detect(text)
    assert guess.language == UNDETERMINED


def test_restricting_the_languages_helps_short_queries() -> None:
    detector = LanguageDetector(["en", "de", "fr"])
    assert detector.language("reset password link") == "en"
    assert detector.language("Passwort zurücksetzen") == "de"
    assert detector.language("mot de passe oublié") == "fr"
    assert detector.get_config_dict()["languages"] == ["de", "en", "fr"]


def test_detection_sees_normalised_text_and_caches() -> None:
    detector = LanguageDetector()
    wide = "Ｗｉｅ ｓｅｔｚｅ ｉｃｈ ｍｅｉｎ Ｐａｓｓｗｏｒｔ ｚｕｒüｃｋ？"
    assert detector.detect(wide) == detector.detect("Wie setze ich mein Passwort zurück?")
    assert len(detector._cache) == 1


def test_unknown_language_code_is_a_usage_error() -> None:
    assert {"en", "de", "fr"} <= set(known_languages())
    with pytest.raises(UsageError, match="unknown language code"):
        LanguageDetector(["en", "xx"]).language("Hello world, how are you?")


# -- profiles and slices -------------------------------------------------------------------------


def test_profile_of_mixed_data_flags_cross_language_queries() -> None:
    data = mixed_dataset()
    profile = language_profile(data.corpus, data.queries, data.qrels["test"])
    assert profile.documents == {"en": 4, "de": 4, "fr": 4}
    assert profile.queries == {"en": 4, "de": 5, "fr": 5}
    assert profile.multilingual
    assert profile.detector["dataset_languages"] == ["de", "en", "fr"]
    for qid, query in data.queries.items():
        expected = query.metadata["expected"]
        if expected == "cross":
            assert profile.cross_language[qid] == "yes", qid
        else:
            assert profile.query_language[qid] == expected and profile.cross_language[qid] == "no", qid
    assert profile.cross_language_ids() == ["x1", "x2"]
    summary = profile.summary()
    assert summary["cross_language_queries"] == 2
    assert summary["cross_language_examples"] == [
        {"query_id": "x1", "language": "de"},
        {"query_id": "x2", "language": "fr"},
    ]
    labels = language_slice_labels(profile, taken={"language"})
    assert labels["x1"] == {"detected_language": "de", "cross_language": "yes"}  # a metadata field "language"


def test_monolingual_data_gets_no_language_slices_unless_asked(tmp_path: Path) -> None:
    data = english_dataset()
    profile = language_profile(data.corpus, data.queries, data.qrels["test"])
    assert not profile.multilingual and profile.queries == {"en": 4}
    assert not wants_language_slices(profile)
    assert wants_language_slices(profile, TextConfig(language_slices="on"))
    runner = SystemRunner(data, data.qrels["test"], None, BenchConfig(), tmp_path)
    summary = profile_languages(runner)
    assert summary["slices"] is False and runner.extra_labels == {} and runner.notes == []
    runner = SystemRunner(
        data, data.qrels["test"], None, BenchConfig(), tmp_path, text=TextConfig(language_slices="on")
    )
    summary = profile_languages(runner)
    assert summary["slices"] is True and runner.extra_labels["q01"] == {"language": "en", "cross_language": "no"}


def test_language_slices_can_be_turned_off(tmp_path: Path) -> None:
    data = mixed_dataset()
    runner = SystemRunner(
        data, data.qrels["test"], None, BenchConfig(), tmp_path, text=TextConfig(language_slices="off")
    )
    summary = profile_languages(runner)
    assert summary["multilingual"] is True and summary["slices"] is False and runner.extra_labels == {}


def test_demo_corpus_is_monolingual() -> None:
    from domainfit.data.demo import demo_path

    data = load_beir(demo_path(), splits=["test"])
    profile = language_profile(data.corpus, data.queries, data.qrels["test"])
    assert not profile.multilingual and set(profile.documents) <= {"en", UNDETERMINED}
    assert profile.cross_language_ids() == []


# -- bench on a tiny mixed-language BEIR folder --------------------------------------------------


@pytest.fixture(scope="module")
def mixed_bench(tmp_path_factory):
    """One bench run (BM25 + MiniLM) over the mixed-language folder, written through the real loader."""
    root = tmp_path_factory.mktemp("mixed")
    folder = write_beir(mixed_dataset(), root / "data")
    result = run_bench(folder, Workspace(root / "ws"), BenchConfig(tune_split=None, hybrid=False))
    return result, Path(result.output_dir)


def test_bench_slices_by_language_and_flags_cross_language_queries(mixed_bench) -> None:
    result, out = mixed_bench
    assert not result.up_to_date and result.languages["slices"]
    metrics = json.loads((out / "metrics.json").read_text())
    for system in ("bm25", "dense"):
        rows = {(row["slice"], row["value"]): row["n_queries"] for row in metrics["slices"][system]}
        assert rows[("language", "en")] == 4
        assert rows[("language", "de")] == 5 and rows[("language", "fr")] == 5
        assert rows[("cross_language", "yes")] == 2 and rows[("cross_language", "no")] == 12
    languages = metrics["languages"]
    assert languages["multilingual"] and languages["slices"]
    assert languages["cross_language_queries"] == 2
    assert languages["text_normalization"].startswith("nfkc-v")
    assert any("2 of 14 queries are cross-language" in note for note in metrics["notes"])
    summary = (out / "summary.md").read_text()
    assert "## Languages" in summary and "| language=de | 5 |" in summary
    assert "| cross_language=yes | 2 |" in summary
    assert "cross-language queries (language not that of any relevant document): 2" in summary
    config = json.loads((out / "config.json").read_text())
    assert config["text"]["normalize"] is True
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"]["text"]["normalization"] == languages["text_normalization"]


def test_bench_is_rerun_when_the_text_settings_change(mixed_bench) -> None:
    _, out = mixed_bench
    folder = Path(json.loads((out / "config.json").read_text())["data"])
    assert run_bench(folder, Workspace(out.parent), BenchConfig(tune_split=None, hybrid=False)).up_to_date
    recorded = json.loads((out / "manifest.json").read_text())["inputs"]["text"]
    assert recorded == TextConfig().fingerprint()
    # any other text setting is another input, so bench would run again
    assert recorded != TextConfig(normalize=False).fingerprint()
    assert recorded != TextConfig(language_slices="off").fingerprint()
