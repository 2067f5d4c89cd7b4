"""CC-FS result codes (spec §4.2): which mean "not yet", "nothing", "slow down", and the error for the rest."""

from __future__ import annotations

from typing import Any

from cdrfetch.errors import CdrfetchError, ConfigError, DataError, UnavailableError
from cdrfetch.untrusted import read_json

NOT_READY, NO_DATA = "0300011", "0300012"
DOWNLOAD_FLOW, QUERY_FLOW = "0300008", "0300009"  # flow-control thresholds reached
FLOW_CONTROL = (DOWNLOAD_FLOW, QUERY_FLOW)
PARAM_CODES = ("0300001", "0300002", "0300003", "0300004", "0300005")
CLIENT_BUGS = ("0300006", "0300007", "0300010")
SETTING_FIELDS = {"callBackURL": "callback_url", "accountId": "account_id", "dataType": "data_type"}


def parse_json(raw: bytes, what: str) -> dict[str, Any]:
    """A JSON object answer; anything else (an HTML page from a proxy, say) is worth another try."""
    try:
        payload = read_json(raw.decode("utf-8"))
    except ValueError:
        raise UnavailableError(
            f"{what}: answer is not JSON: {raw[:200]!r}",
            "check `base_url`; a proxy may be answering instead of CC-FS",
            retryable=True,
        ) from None
    if not isinstance(payload, dict):
        raise DataError(f"{what}: unexpected JSON answer", "report this CC-FS answer")
    return payload


def result_code(payload: dict[str, Any]) -> str:
    """Top-level resultCode, else the legacy response.resultCode; "<none>" without one."""
    code = payload.get("resultCode")
    legacy = payload.get("response")
    if code is None and isinstance(legacy, dict):
        code = legacy.get("resultCode")
    # a code that is an object or a list is no code (and its text could nest without end)
    return str(code) if isinstance(code, (str, int, float)) else "<none>"


def error_for(what: str, code: str, desc: str) -> CdrfetchError:
    """The error for a result code that is neither success, zero records nor flow control."""
    text = f"{what}: CC-FS result {code}: {desc}".rstrip(": ")
    if code in PARAM_CODES:
        for param, setting in SETTING_FIELDS.items():
            if param in desc:
                return ConfigError(text, f"check the `{setting}` setting")
        if "beginTime" in desc or "endTime" in desc:
            return DataError(text, "CC-FS exports at most 3 days; check `max_window_days` and `tz`")
    if code in CLIENT_BUGS or code in PARAM_CODES:
        return DataError(text, "CC-FS rejected the request; please report this")
    return DataError(text, "an undocumented CC-FS result code; see the CC-FS error code reference")
