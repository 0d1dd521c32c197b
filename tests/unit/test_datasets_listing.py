"""The catalogue's pages: keyset cursors on the name, search in the database, and the
list handlers' 400s naming the field (the catalogue app served on loopback, the hub's
user check replaced by a fixed member)."""

import json
import socket
import threading
import time

import pytest
import requests
from tornado import ioloop

from hub_config.datasets import DatasetStore
from hub_config.datasets import listing
from hub_config.datasets import service as datasets_service
from hub_config.datasets.listing import BadArgument, PageQuery, decode_cursor, encode_cursor, parse_limit


def publish(store, name, **fields):
    store.add(name, actor="s", path="/tmp", **fields)
    store.record_scan(name, actor="s", report={"passed": True, "summary": []},
                      facts={"files": [], "rows": 0, "size_bytes": 0, "format": "csv"})
    store.publish(name, actor="s")


@pytest.fixture
def store(database):
    store = DatasetStore(database("listing"))
    for i in range(7):
        publish(store, f"set-{i}", title=f"Set {i}", tags=["icu"] if i % 2 else ["labs"])
    publish(store, "sepsis-cohort", title="Sepsis cohort", description="Adult ICU stays with SEPSIS-3 labels",
            tags=["icu", "100%_real"])
    for name in ("set-0", "set-1", "set-2", "set-3", "set-4", "sepsis-cohort"):
        store.grant(name, actor="s", users=["alice"])
    store.grant("set-5", actor="s", groups=["ward"])
    yield store
    store.engine.dispose()


def names(page):
    return [d["name"] for d in page["items"]]


def all_pages(fetch, limit):
    seen, cursor = [], None
    while True:
        page = fetch(PageQuery(after=decode_cursor(cursor) if cursor else None, limit=limit))
        seen += names(page)
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


def test_pages_walk_every_granted_dataset_once_in_name_order(store):
    fetch = lambda page: listing.granted_page(store.engine, "alice", ["ward"], page)  # noqa: E731
    expected = ["sepsis-cohort", "set-0", "set-1", "set-2", "set-3", "set-4", "set-5"]
    for limit in (1, 2, 3, 7, 50):
        assert all_pages(fetch, limit) == expected
    first = fetch(PageQuery(limit=7))
    assert first["next_cursor"] is None and first["items"][0]["tags"] == ["100%_real", "icu"]


def test_a_cursor_stays_valid_when_datasets_are_added_and_removed(store):
    first = listing.granted_page(store.engine, "alice", [], PageQuery(limit=3))
    assert names(first) == ["sepsis-cohort", "set-0", "set-1"]
    publish(store, "aaa-new")  # before the cursor: not on later pages
    store.grant("aaa-new", actor="s", users=["alice"])
    store.revoke("set-2", actor="s", users=["alice"])  # on the next page: gone, nothing skipped
    rest = listing.granted_page(store.engine, "alice", [], PageQuery(after=decode_cursor(first["next_cursor"])))
    assert names(rest) == ["set-3", "set-4"]


def test_search_matches_every_word_in_name_title_description_or_tags_case_insensitively(store):
    def found(q="", tag=""):
        return names(listing.granted_page(store.engine, "alice", [], PageQuery(q=q, tag=tag)))

    assert found("sepsis-3 adult") == ["sepsis-cohort"]
    assert found("SET 3") == ["set-3"]
    assert found("100%") == ["sepsis-cohort"]  # LIKE's wildcards are taken literally
    assert found("_real") == ["sepsis-cohort"]
    assert found(tag="icu") == ["sepsis-cohort", "set-1", "set-3"]
    assert found(tag="ic") == []  # a tag matches whole
    assert found("nothing-like-it") == []


def test_requestable_pages_show_metadata_and_the_members_latest_request(store):
    store.request_access("set-6", "alice", [], "a study of the sixth set")
    page = listing.requestable_page(store.engine, "alice", [], PageQuery(limit=1))
    assert names(page) == ["set-5"] and page["items"][0]["request"] is None
    page = listing.requestable_page(store.engine, "alice", [], PageQuery(after=decode_cursor(page["next_cursor"])))
    assert names(page) == ["set-6"] and page["next_cursor"] is None
    assert page["items"][0]["request"]["status"] == "pending" and "licence" in page["items"][0]
    assert names(listing.requestable_page(store.engine, "alice", ["ward"], PageQuery())) == ["set-6"]


@pytest.mark.parametrize("raw", ["bm9wZQ", "!!!", encode_cursor("x")[:-2] + "zz", "eyJhZnRlciI6ICIuLi8ifQ"])
def test_a_cursor_not_made_here_is_refused_naming_the_field(raw):
    with pytest.raises(BadArgument) as e:
        decode_cursor(raw)
    assert e.value.field == "cursor"


@pytest.mark.parametrize("raw, ok", [(None, 50), ("1", 1), ("200", 200), ("0", None), ("201", None), ("ten", None)])
def test_limits(raw, ok):
    if ok is not None:
        assert parse_limit(raw) == ok
    else:
        with pytest.raises(BadArgument, match="^limit: "):
            parse_limit(raw)


# --------------------------------------------------------------------------- through the handlers


@pytest.fixture
def catalogue(store):
    async def prepare(self):
        self.current_user = {"name": "alice", "groups": []}

    original = datasets_service.CatalogueHandler.prepare
    datasets_service.CatalogueHandler.prepare = prepare
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    started, loop_box = threading.Event(), {}

    def serve():
        import asyncio

        asyncio.set_event_loop(asyncio.new_event_loop())
        app = datasets_service.DatasetsService(store=store, settings={"mount_root": "/datasets"}).make_app()
        app.listen(port, "127.0.0.1")
        loop_box["loop"] = ioloop.IOLoop.current()
        started.set()
        loop_box["loop"].start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    started.wait(10)
    yield f"http://127.0.0.1:{port}/services/datasets/api/"
    loop_box["loop"].add_callback(loop_box["loop"].stop)
    thread.join(10)
    datasets_service.CatalogueHandler.prepare = original


def test_handlers_page_and_keep_the_whole_list_for_old_clients(catalogue):
    old = requests.get(catalogue + "datasets", timeout=10).json()
    assert len(old["datasets"]) == 6 and old["mount_root"] == "/datasets"
    page = requests.get(catalogue + "datasets", params={"limit": 4}, timeout=10).json()
    assert [d["name"] for d in page["items"]] == [d["name"] for d in old["datasets"]][:4]
    rest = requests.get(catalogue + "datasets", params={"cursor": page["next_cursor"], "q": "set"}, timeout=10).json()
    assert [d["name"] for d in rest["items"]] == ["set-3", "set-4"] and rest["next_cursor"] is None
    other = requests.get(catalogue + "requestable", params={"limit": 1, "tag": "icu"}, timeout=10).json()
    assert [d["name"] for d in other["items"]] == ["set-5"] and other["next_cursor"] is None


@pytest.mark.parametrize("params, field", [({"limit": "0"}, "limit"), ({"limit": "x"}, "limit"),
                                           ({"cursor": "garbage"}, "cursor"), ({"limit": "5", "q": "x" * 201}, "q")])
def test_bad_page_arguments_get_a_400_naming_the_field(catalogue, params, field):
    for path in ("datasets", "requestable"):
        r = requests.get(catalogue + path, params=params, timeout=10)
        assert r.status_code == 400, r.text
        assert json.loads(r.text)["message"].startswith(field), r.text


def test_a_browser_gets_errors_as_a_page_in_the_hubs_look_with_a_way_back(catalogue):
    page = catalogue.replace("/api/", "/nowhere")
    r = requests.get(page, headers={"Accept": "text/html"}, timeout=10)
    assert r.status_code == 404 and r.headers["Content-Type"].startswith("text/html")
    assert "<h1 class=\"h3\">404 Not Found</h1>" in r.text and "/services/datasets/nowhere is not a page" in r.text
    assert 'static/css/style.min.css"' in r.text and 'href="/hub/home">Back to the hub</a>' in r.text
    # an API client gets the same error as JSON
    api = requests.get(catalogue + "nowhere", timeout=10)
    assert api.status_code == 404 and api.json()["status"] == 404
