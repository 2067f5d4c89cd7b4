"""Laaffic (also Onbuka / ITNIO): number call records from `/number/record/queryPage`.

Per chunk of at most `max_window_days` local days: page 1 alone (it tells the page count), then
pages 2..N concurrently through a bounded, throttle-aware gate; every request freshly signed.
Each page's `total`, `pages` and records must agree with each other (codes.declared) before any
request is planned from them.
Records are de-duplicated on `callid` across pages and chunks. See specs/laaffic.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from cdrfetch.concurrency import Gate, prompt_thread_switches
from cdrfetch.errors import CdrfetchError, TemporaryError
from cdrfetch.http import fail_on_status
from cdrfetch.providers.base import Provider, Setting
from cdrfetch.providers.laaffic import codes, parse
from cdrfetch.providers.laaffic import protocol as proto
from cdrfetch.windows import Window, day_window, zone

if TYPE_CHECKING:
    import pyarrow as pa
    import requests

    from cdrfetch.client import Client
    from cdrfetch.config import Resolved
    from cdrfetch.fingerprints import FingerprintSet
    from cdrfetch.records import Batch

MAX_PASSES = 3  # full passes over a chunk whose total keeps changing before giving up


@dataclass
class Page:
    """One answered page: what the server said about the whole query, and this page's records."""

    number: int
    total: int
    pages: int
    ids: list[str]  # callids, in order
    batch: pa.RecordBatch  # the rows, converted while other pages are still in flight


class Laaffic(Provider):
    """Laaffic number call records (paged, signed JSON; concurrent pages)."""

    name: ClassVar[str] = "laaffic"
    title: ClassVar[str] = "Laaffic number call records"
    account_setting: ClassVar[str] = "api_key"
    flow = (
        "POST {base_url}/number/record/queryPage page 1 (signed: Api-Key, Timestamp, Sign)",
        "POST the same for pages 2..N it declares, at most {concurrency} at a time",
    )
    max_window: ClassVar[timedelta | None] = timedelta(days=31)
    settings: ClassVar[tuple[Setting, ...]] = (
        Setting("base_url", "API root, /v3 included (other brands: https://api.itniotech.com)",
                default="https://api.laaffic.com/v3"),
        Setting("api_key", "the Api-Key (also the `account` column)"),
        Setting("api_secret", "the API secret used to sign requests", secret=True),
        Setting("tz", "zone of query times, chunk boundaries and naive record times", default="Asia/Shanghai"),
        Setting(
            "max_window_days", "longest chunk per query, in days (Laaffic allows 31)", default=31, kind=int,
            minimum=1, maximum=31,
        ),
        Setting(
            "concurrency", "page requests in flight at once within a chunk", default=4, kind=int,
            minimum=1, maximum=64,
        ),
    )  # fmt: skip

    def __init__(self, settings: Resolved, client: Client) -> None:
        super().__init__(settings, client)
        self.tz = zone(str(settings["tz"]))
        self.days = int(settings["max_window_days"])
        self.concurrency = int(settings["concurrency"])
        self.url = str(settings["base_url"]).rstrip("/") + "/number/record/queryPage"
        self.auth = proto.LaafficAuth(str(settings["api_key"]), str(settings["api_secret"]), client.clock)
        self.gate = Gate(self.concurrency)
        self.parser = parse.RecordParser(self.account, self.tz)
        from cdrfetch.fingerprints import FingerprintSet

        self._seen: FingerprintSet = FingerprintSet()  # callids already yielded in this run (dedup across chunks)

    def chunks(self, window: Window) -> list[Window]:
        """Chunks of at most `max_window_days` days, aligned to midnight in `tz`."""
        return proto.local_chunks(window, self.tz, self.days)

    def fetch(self, chunk: Window) -> Iterator[Batch]:
        """Every record of `chunk`, de-duplicated on callid, in the server's order."""
        from cdrfetch.records import table_batches

        fresh = self._fresh(self._pull(chunk))  # only once every page arrived: a failed chunk marks nothing seen
        if fresh is not None:
            yield from table_batches("calls", fresh)

    def check(self) -> str:
        """Query page 1 of yesterday (local) and report what the key can see."""
        today = self.client.clock().astimezone(self.tz).date()
        window = day_window(today - timedelta(days=1), self.tz)
        page = self._page(window, 1)
        return f"Api-Key {self.account} accepted: {page.total} records on {window.start.astimezone(self.tz):%Y-%m-%d}"

    # --- pagination -------------------------------------------------------------------------

    def _pull(self, chunk: Window) -> list[dict[int, Page]]:
        """Every pass over the chunk's pages, newest first.

        The server's page slices shift when records arrive during the pull, so a record can slip
        between two pages fetched at different moments. Records are only ever added (no source
        shows deletions), and every answer carries the then-current `total`. So once the distinct
        callids collected reach the largest `total` any page reported, we hold every record that
        existed when that page answered: nothing was lost. If not, fetch all pages again (a new
        pass) and repeat, at most MAX_PASSES times. A pass that adds nothing while the total
        stands still means the server's total overstates its records: accept, with a warning.
        Duplicates from shifted slices are removed later on callid.
        """
        first = self._page(chunk, 1)
        if first.total == 0:
            return []
        passes = [self._complete(chunk, {1: first})]
        while not self._settled(chunk, passes):
            total = _largest_total(passes)
            self.client.log.info("laaffic %s: total changed to %d while paging; reading it again", chunk.label, total)
            passes.append(self._complete(chunk, {}, _largest_pages(passes)))
        return passes[::-1]

    def _settled(self, chunk: Window, passes: list[dict[int, Page]]) -> bool:
        """True when the passes hold every record the server counted, or provably cannot get more."""
        total, have = _largest_total(passes), _callids(passes)
        if len(have) >= total:
            return True
        if len(passes) > 1 and _callids(passes[:-1]) == have and _largest_total(passes[:-1]) == total:
            self.client.warn(
                f"laaffic: {chunk.label}: Laaffic reports {total} records but sent {len(have)} distinct ones"
            )
            return True
        if len(passes) == MAX_PASSES:
            raise TemporaryError(
                f"laaffic {chunk.label}: records kept arriving while paging ({len(have)} of {total} read)",
                "run again later, or pull a window that ends further in the past",
            )
        return False

    def _complete(self, chunk: Window, pages: dict[int, Page], known: int = 1) -> dict[int, Page]:
        """Fetch the missing pages until no answer reports a larger page count than we hold."""
        progress = self.client.progress(f"laaffic {chunk.label}", None)
        try:
            while True:
                wanted = max([known, *(page.pages for page in pages.values())])
                missing = [number for number in range(1, wanted + 1) if number not in pages]
                if not missing:
                    return pages
                for page in self._pages(chunk, missing):
                    pages[page.number] = page
                    progress.update(len(pages), wanted, f"page {page.number}")
        finally:
            progress.close()

    def _pages(self, chunk: Window, numbers: list[int]) -> Iterator[Page]:
        """Fetch pages concurrently (bounded by the gate); parse each as it arrives."""
        self.gate.abort(False)
        workers = min(self.concurrency, len(numbers))
        with prompt_thread_switches(), ThreadPoolExecutor(workers, thread_name_prefix="laaffic-page") as pool:
            futures: dict[Future[dict[str, Any]], int] = {
                pool.submit(self._worker, chunk, number): number for number in numbers
            }
            try:
                for future in as_completed(futures):
                    yield self._parse(chunk, futures[future], future.result())
            finally:
                self.gate.abort()  # a failure stops the other workers before their next attempt
                for future in futures:
                    future.cancel()

    def _worker(self, chunk: Window, number: int) -> dict[str, Any]:
        try:
            return self._request(chunk, number)
        finally:
            self.gate.done()

    def _page(self, chunk: Window, number: int) -> Page:
        self.gate.abort(False)
        try:
            return self._parse(chunk, number, self._request(chunk, number))
        finally:
            self.gate.done()

    # --- one page -------------------------------------------------------------------------

    def _request(self, chunk: Window, number: int) -> dict[str, Any]:
        """`data` of one page, retried by the core (re-signed on every attempt)."""
        what = f"laaffic {chunk.label} page {number}"
        body = proto.query_body(chunk, self.tz, number)
        return self.client.retry(lambda: self._attempt(what, body), what=what)

    def _attempt(self, what: str, body: bytes) -> dict[str, Any]:
        self.gate.enter()
        throttled = False
        try:
            headers = {"Content-Type": proto.CONTENT_TYPE}
            response = self.client.send("POST", self.url, what=what, data=body, headers=headers, auth=self.auth)
            fail_on_status(response, what, proto.HTTP_HINTS)
            return self._data(response, what, body)
        except CdrfetchError as error:
            throttled = proto.is_throttle(error)
            raise
        finally:
            bound = self.gate.leave(throttled)
            if bound is not None and throttled:
                self.client.warn(f"laaffic: throttled by Laaffic; concurrency lowered to {bound} for now")
            elif bound is not None:
                self.client.log.info("laaffic: no throttling for a while; concurrency back up to %d", bound)

    def _data(self, response: requests.Response, what: str, body: bytes) -> dict[str, Any]:
        """The `data` object of a successful answer; raise the mapped error otherwise."""
        return codes.answer_data(response, what, lambda: f"POST {self.url} {body.decode('utf-8')}")

    def _parse(self, chunk: Window, number: int, data: dict[str, Any]) -> Page:
        """One page: its declared counts, checked (codes.declared), and its rows; errors name the page."""
        where = f"laaffic {chunk.label} page {number}"
        total, pages, records = codes.declared(data, where, number)
        ids, batch = codes.page_rows(self.parser, where, records)
        return Page(number, total, pages, ids, batch)

    # --- helpers ---------------------------------------------------------------------------

    def _fresh(self, passes: list[dict[int, Page]]) -> pa.Table | None:
        """The rows in (pass newest first, page, position) order whose callid was not seen before (now seen)."""
        import pyarrow as pa

        from cdrfetch import fingerprints
        from cdrfetch.records import CALLS

        batches = [pages[number].batch for pages in passes for number in sorted(pages)]
        if not batches:
            return None
        rows = pa.Table.from_batches(batches, schema=CALLS).combine_chunks()
        # The whole chunk at once (pages hold 100 rows): one vectorized lookup, not one per page.
        fresh = fingerprints.unseen(rows, self._seen)  # record_id is the callid
        self.client.log.debug("laaffic: %d duplicate callids dropped", rows.num_rows - fresh.num_rows)
        return fresh


def _callids(passes: list[dict[int, Page]]) -> set[str]:
    return {callid for pages in passes for page in pages.values() for callid in page.ids}


def _largest_total(passes: list[dict[int, Page]]) -> int:
    return max(page.total for pages in passes for page in pages.values())


def _largest_pages(passes: list[dict[int, Page]]) -> int:
    return max(page.pages for pages in passes for page in pages.values())


PROVIDER = Laaffic
