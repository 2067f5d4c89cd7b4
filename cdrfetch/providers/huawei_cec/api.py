"""The CC-FS request envelope: one signed JSON POST and the result codes every answer carries (spec §3, §7)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cdrfetch import http
from cdrfetch.errors import AuthError, ConfigError, TemporaryError
from cdrfetch.providers.huawei_cec import codes

if TYPE_CHECKING:
    import requests

    from cdrfetch.client import Client
    from cdrfetch.providers.huawei_cec.signing import AuthV2

HEADERS = {"Content-Type": "application/json; charset=UTF-8", "Accept": "*/*"}
FLOW_DELAY_MAX = 300.0
QUERY_FLOW_TRIES = 5  # queryBillData under flow control (0300009): at most this many tries (spec §7.3)
AUTH_RETRIES = 1  # spec §3.7: one re-signed retry after a 401, then stop (the server locks the IP)
AUTH_HINT = (
    "check `ak` and `sk`, the system clock (auth-v2 timestamps expire), "
    "or try `signed_headers: host`; repeated failures lock this IP"
)
LOCK_HINT = (
    "CC-FS locked this IP after repeated auth failures; check `ak`/`sk` and the clock, then wait before retrying"
)


@dataclass
class Attempts:
    """Per-request counters that decide whether the core may try again."""

    auth: int = 0
    flow: int = 0


class Ccfs:
    """Signed POSTs to one CC-FS and the meaning of their result codes."""

    def __init__(self, client: Client, auth: AuthV2, base_url: str, flow_backoff: float) -> None:
        self.client, self.auth, self.base_url, self.flow_backoff = client, auth, base_url, flow_backoff

    def post(self, path: str, msg: dict[str, str], attempts: Attempts, *, what: str, **kw: Any) -> requests.Response:
        """Sign and send one POST; 401 gets one re-signed retry, 403 (IP locked) none."""
        body = json.dumps({"request": {"version": "2.0"}, "msgBody": msg}, separators=(",", ":"), ensure_ascii=False)
        response = self.client.send(
            "POST", self.base_url + path, what=what, data=body.encode("utf-8"), headers=HEADERS, auth=self.auth, **kw
        )
        if response.status_code == 401:
            response.close()
            attempts.auth += 1
            raise AuthError(
                f"{what}: signature rejected (HTTP 401)", AUTH_HINT, retryable=attempts.auth <= AUTH_RETRIES
            )
        if response.status_code == 403:
            response.close()
            raise AuthError(f"{what}: HTTP 403, this IP is locked by CC-FS", LOCK_HINT)
        if response.status_code in (404, 405):
            response.close()
            raise ConfigError(f"{what}: HTTP {response.status_code}", "check `base_url` (host, port, NSLB mapping)")
        http.fail_on_status(response, what)
        return response

    def result(self, payload: dict[str, Any], what: str, attempts: Attempts) -> dict[str, Any] | None:
        """The payload for result 0, None for 0300012 (zero records); every other code raises."""
        code, desc = codes.result_code(payload), str(payload.get("resultDesc") or "")
        if code == "0":
            return payload
        if code == codes.NO_DATA:
            return None
        if code in codes.FLOW_CONTROL:
            delay = min(self.flow_backoff * 2**attempts.flow, FLOW_DELAY_MAX)
            attempts.flow += 1
            again = code == codes.DOWNLOAD_FLOW or attempts.flow < QUERY_FLOW_TRIES
            raise TemporaryError(
                f"{what}: CC-FS flow control ({code} {desc})", "run again later", retryable=again, retry_after=delay
            )
        raise codes.error_for(what, code, desc)
