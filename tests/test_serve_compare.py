"""The ``/compare`` page over real HTTP and in headless Chromium: two versions side by side, judgements on disk.

One ``domainfit serve`` process (uvicorn on a free 127.0.0.1 port, the shared
`running_service` fixture) over the two-version LanceDB index of
`serve_support`, with a bearer token and ``[serve] judgements`` naming a copy
of the mini BEIR folder. The HTTP tests check the login cookie, the two
columns against the index's own answers, what moved, escaping, every refusal
and the judged lines; the browser test (Selenium driving Debian's chromium
through ``/usr/bin/chromedriver``, so nothing is downloaded) types a query,
sees both columns, marks a result and finds the qrels line on disk.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from conftest import build_mini_dataset
from domainfit.data.beir import load_beir, write_beir
from domainfit.index.backend import SearchQuery, open_index
from domainfit.serve.judgements import judged_query_id
from serve_support import TOKEN, build_served_index, running_service

AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def server(tmp_path_factory, minilm):
    root = tmp_path_factory.mktemp("serve-compare")
    served = build_served_index(root, minilm)
    judged = write_beir(build_mini_dataset(), root / "judged")
    (root / "domainfit.toml").write_text(f'[serve]\njudgements = "{judged}"\njudgements_split = "test"\n')
    (root / "token").write_text(TOKEN + "\n")
    args = ["--workspace", str(served.workspace), "--config", str(root / "domainfit.toml"),
            "--token-file", str(root / "token"), "--version-model", f"cls={served.cls_model}"]  # fmt: skip
    with running_service(args, root, AUTH) as service:
        yield service, served, judged


class Page(HTMLParser):
    """The columns of a compare page: per column id, its version and its rows (doc, move, badge text)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.columns: dict[str, dict] = {}
        self.form_token: str | None = None
        self.notice = ""
        self._column: str | None = None
        self._in: str | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section" and a.get("class") == "column":
            self._column = a["id"]
            self.columns[self._column] = {"version": a["data-version"], "rows": []}
        elif tag == "li" and a.get("class") == "result" and self._column:
            self.columns[self._column]["rows"].append({"doc": a["data-doc"], "move": a["data-move"], "badge": ""})
        elif tag == "span" and (a.get("class") or "").startswith("move "):
            self._in = "badge"
        elif tag == "p" and a.get("id") == "notice":
            self._in = "notice"
        elif tag == "input" and a.get("name") == "form_token":
            self.form_token = a["value"]

    def handle_endtag(self, tag):
        if tag == "section":
            self._column = None
        if tag in ("span", "p"):
            self._in = None

    def handle_data(self, data):
        if self._in == "badge" and self._column:
            self.columns[self._column]["rows"][-1]["badge"] += data
        elif self._in == "notice":
            self.notice += data

    def ids(self, side: str) -> list[str]:
        return [r["doc"] for r in self.columns[f"{side}-column"]["rows"]]


def _direct(served, query: str, version: str, k: int = 10) -> list[str]:
    store, _ = open_index(served.index)
    try:
        vector = served.encoders[version].encode([query])[0].tolist()
        return [h.id for h in store.search(SearchQuery(vector=vector, k=k, version=version))]
    finally:
        store.close()


def _qrels_rows(judged: Path) -> list[str]:
    return (judged / "qrels" / "test.tsv").read_text().splitlines()


def _judge(client: httpx.Client, form: dict[str, str], **kw) -> httpx.Response:
    return client.post("/compare/judge", data=form, headers=AUTH, follow_redirects=False, **kw)


def test_the_page_needs_the_token_and_a_login_sets_a_cookie_for_the_page_only(server):
    service, _, _ = server
    client = service.client
    refused = client.get("/compare")
    assert refused.status_code == 401 and 'name="token"' in refused.text  # the login form, not a JSON body
    assert client.get("/compare?token=wrong-token-0123456789").status_code == 401
    login = client.get(f"/compare?token={TOKEN}&q=dns+ttl", follow_redirects=False)
    assert login.status_code == 303 and login.headers["location"] == "/compare?q=dns+ttl"
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/compare" in cookie
    assert TOKEN not in cookie
    value = cookie.split(";")[0]
    with httpx.Client(base_url=service.base_url, timeout=120, headers={"Cookie": value}) as browser:
        assert browser.get("/compare?q=dns+ttl").status_code == 200
        assert browser.post("/search", json={"query": "dns ttl"}).status_code == 401  # the cookie opens /compare only
    assert client.get("/compare", headers={"Cookie": "domainfit_compare=forged"}).status_code == 401


def test_both_columns_are_the_versions_own_results_with_what_moved(server):
    service, served, _ = server
    query = "refund a payment"
    response = service.client.get("/compare", params={"q": query}, headers=AUTH)
    assert response.status_code == 200, response.text
    page = Page(response.text)
    assert page.columns["old-column"]["version"] == "base" and page.columns["new-column"]["version"] == "cls"
    old, new = page.ids("old"), page.ids("new")
    assert old == _direct(served, query, "base") and new == _direct(served, query, "cls")
    assert old != new  # the two models rank differently, so something moved
    for rank, row in enumerate(page.columns["new-column"]["rows"]):
        if row["doc"] not in old:
            assert row["move"] == "new" and row["badge"] == "new in top k"
        else:
            shift = old.index(row["doc"]) - rank
            expected = "up" if shift > 0 else "down" if shift < 0 else "same"
            assert row["move"] == expected, row
            if shift:
                assert row["badge"].endswith(f"{expected} {abs(shift)}"), row
    for row in page.columns["old-column"]["rows"]:
        assert (row["move"] == "dropped") == (row["doc"] not in new), row
    swapped = Page(service.client.get("/compare", params={"q": query, "old": "cls", "new": "base"}, headers=AUTH).text)
    assert swapped.ids("old") == new and swapped.ids("new") == old


def test_unknown_versions_and_bad_parameters_are_refused_as_pages(server):
    client = server[0].client
    assert client.get("/compare", params={"q": "x", "new": "nope"}, headers=AUTH).status_code == 404
    assert client.get("/compare", params={"q": "x", "old": "cls", "new": "cls"}, headers=AUTH).status_code == 422
    assert client.get("/compare", params={"q": "x", "k": "1000000"}, headers=AUTH).status_code == 422
    assert client.get("/compare", params={"q": "x", "k": "many"}, headers=AUTH).status_code == 422


def test_every_value_is_escaped(server):
    client = server[0].client
    nasty = "<script>alert('x')</script> \" onmouseover=\"alert(1)"
    text = client.get("/compare", params={"q": nasty}, headers=AUTH).text
    assert "<script>" not in text and 'onmouseover="alert' not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &quot; onmouseover=&quot;alert(1)" in text
    page = client.get("/compare", params={"q": "x", "new": "<b>v</b>"}, headers=AUTH)
    assert page.status_code == 404 and "<b>v</b>" not in page.text and "&lt;b&gt;v&lt;/b&gt;" in page.text


def test_a_judgement_round_trip_over_http_and_its_refusals(server):
    service, _, judged = server
    client = service.client
    query = "open port 443 in the firewall"
    page = Page(client.get("/compare", params={"q": query}, headers=AUTH).text)
    doc = page.ids("new")[0]
    form = {"q": query, "doc_id": doc, "grade": "1", "form_token": page.form_token, "old": "base", "new": "cls",
            "k": "10", "folder": str(judged.parent / "elsewhere")}  # fmt: skip
    before = _qrels_rows(judged)
    answer = _judge(client, form)
    assert answer.status_code == 303 and "outcome=written" in answer.headers["location"]
    qid = judged_query_id(query)
    assert _qrels_rows(judged) == [*before, f"{qid}\t{doc}\t1"]
    shown = Page(client.get(answer.headers["location"], headers=AUTH).text)
    assert shown.notice.startswith(f"{doc} judged 1")
    again = _judge(client, {**form, "grade": "0"})  # the same pair again: the first judgement stands
    assert "outcome=kept" in again.headers["location"]
    assert _qrels_rows(judged) == [*before, f"{qid}\t{doc}\t1"]
    for changed, status in [({"form_token": "x"}, 403), ({"doc_id": "../../etc/passwd"}, 422),
                            ({"doc_id": "d999"}, 422), ({"grade": "yes"}, 422), ({"q": " "}, 422)]:  # fmt: skip
        assert _judge(client, {**form, **changed}).status_code == status, changed
    json_body = client.post("/compare/judge", json=form, headers=AUTH)
    assert json_body.status_code == 415
    with httpx.Client(base_url=service.base_url, timeout=120) as stranger:  # no token, no cookie
        assert stranger.post("/compare/judge", data=form).status_code == 401
    assert _qrels_rows(judged) == [*before, f"{qid}\t{doc}\t1"]
    assert not (judged.parent / "elsewhere").exists()  # no request names where to write
    dataset = load_beir(judged)  # the next benchmark reads the folder
    assert dataset.qrels["test"][qid] == {doc: 1} and dataset.queries[qid].text == query


def _browser():
    if not CHROMEDRIVER.exists():
        pytest.skip(
            "no /usr/bin/chromedriver: install the browser with `apt-get install -y chromium chromium-driver` "
            "(`make test` does it when run as root)"
        )
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def test_in_chromium_type_a_query_see_both_columns_mark_a_result_and_find_the_line_on_disk(server):
    service, served, judged = server
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _browser()
    try:
        wait = WebDriverWait(driver, 60)
        driver.get(f"{service.base_url}/compare?token={TOKEN}")  # the login: a cookie, then the page without the token
        wait.until(ec.presence_of_element_located((By.ID, "q")))
        assert "token" not in driver.current_url
        query = "load balancer marks a target unhealthy"
        box = driver.find_element(By.ID, "q")
        box.clear()
        box.send_keys(query)
        driver.find_element(By.ID, "search").click()
        wait.until(ec.presence_of_element_located((By.ID, "new-column")))
        old = driver.find_element(By.ID, "old-column")
        new = driver.find_element(By.ID, "new-column")
        assert old.get_attribute("data-version") == "base" and new.get_attribute("data-version") == "cls"
        old_ids = [li.get_attribute("data-doc") for li in old.find_elements(By.CSS_SELECTOR, "li.result")]
        new_items = new.find_elements(By.CSS_SELECTOR, "li.result")
        assert old_ids == _direct(served, query, "base") and len(new_items) == 10
        target = new_items[1]
        doc = target.get_attribute("data-doc")
        assert target.find_element(By.CSS_SELECTOR, ".move").text  # what moved is shown on every row
        target.find_element(By.CSS_SELECTOR, "button.judge-relevant").click()
        notice = wait.until(ec.presence_of_element_located((By.ID, "notice")))
        assert notice.text.startswith(f"{doc} judged 1")
        line = f"{judged_query_id(query)}\t{doc}\t1"
        assert line in _qrels_rows(judged)
        marked = driver.find_element(By.CSS_SELECTOR, f'#new-column li.result[data-doc="{doc}"] .grade')
        assert marked.text == "judged 1"
    finally:
        driver.quit()
    assert (judged / "queries.jsonl").read_text().splitlines()[
        -1
    ] == f'{{"_id":"{judged_query_id(query)}","text":"{query}"}}'
