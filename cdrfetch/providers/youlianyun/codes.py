"""Youlianyun responses: the envelope rules of §4.1 and the respCode table of §4.2."""

from __future__ import annotations

import re
from typing import Any

from cdrfetch.errors import AuthError, CdrfetchError, ConfigError, DataError, UnavailableError
from cdrfetch.untrusted import read_json

SUCCESS = ("200", "000000")
NO_DATA = "100007"
EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"
CONTACT = "contact Youlianyun support about the account"
SID_HINT = "check `account_sid` (32 letters and digits, no spaces)"
APP_HINT = "check `app_id`"

# code -> (error class, meaning, hint); retryable codes are listed in RETRYABLE
TABLE: dict[str, tuple[type[CdrfetchError], str, str]] = {
    "100003": (ConfigError, "empty value: the server found no appId/date", "switch `body_style` (flat <-> wrapped)"),
    "100004": (ConfigError, "date value not accepted", "switch `date_style` (dash <-> compact)"),
    "100005": (AuthError, "IP not allowed", "add this host's public IP to the whitelist in the Youlianyun console"),
    "100500": (UnavailableError, "internal account-service failure", "the provider is failing; run again later"),
    "100699": (UnavailableError, "internal error", "the provider is failing; run again later"),
    "101100": (AuthError, "Authorization header empty", "a signing bug; check the cdrfetch version"),
    "101101": (AuthError, "Authorization is not valid base64", "a signing bug; check the cdrfetch version"),
    "101102": (AuthError, "Authorization carries no account id", SID_HINT),
    "101103": (AuthError, "Authorization carries no timestamp", "a signing bug; check the cdrfetch version"),
    "101104": (AuthError, "account id is not 32 characters", SID_HINT),
    "101105": (AuthError, "account id has illegal characters", SID_HINT),
    "101106": (AuthError, "timestamp expired", "check the system clock; cdrfetch signs with UTC+8 time"),
    "101107": (AuthError, "wrong API version", "the version segment in `base_url` is wrong (expected 2014-06-30)"),
    "101108": (AuthError, "account closed", CONTACT),
    "101109": (AuthError, "account not activated", CONTACT),
    "101110": (AuthError, "account paused or locked", CONTACT),
    "101111": (AuthError, "account does not exist", SID_HINT),
    "101112": (AuthError, "account id empty", SID_HINT),
    "101113": (AuthError, "account id in Authorization differs from the URL", SID_HINT),
    "101114": (AuthError, "sig missing", "a signing bug; check the cdrfetch version"),
    "101115": (AuthError, "request token check failed", "check `auth_token`"),
    "101116": (AuthError, "sig mismatch", "check `auth_token` (and `account_sid`)"),
    "101117": (AuthError, "account token missing", CONTACT),
    "101119": (AuthError, "account abnormal", CONTACT),
    "101120": (AuthError, "registration not activated", CONTACT),
    "101121": (AuthError, "no registration information", CONTACT),
    "101122": (AuthError, "account locked", CONTACT),
    "102101": (ConfigError, "appId has illegal characters", APP_HINT),
    "102102": (ConfigError, "application does not exist", APP_HINT),
    "102103": (ConfigError, "application not approved", APP_HINT),
    "102105": (ConfigError, "application belongs to another account", "`app_id` and `account_sid` do not match"),
    "102115": (ConfigError, "application offline", APP_HINT),
    "102116": (ConfigError, "application not approved", APP_HINT),
    "102117": (ConfigError, "application deleted", APP_HINT),
    "102118": (ConfigError, "application pending review", APP_HINT),
    "102119": (ConfigError, "application forced offline", APP_HINT),
}
RETRYABLE = {"100500", "100699"}


def error_for(code: str, what: str) -> CdrfetchError:
    """The error of a non-success respCode (unknown codes: unavailable, not retried)."""
    kind, meaning, hint = TABLE.get(code, (UnavailableError, "unknown respCode", "see the Youlianyun error codes"))
    return kind(f"{what}: respCode {code} ({meaning})", hint, retryable=code in RETRYABLE)


def envelope(content: bytes, what: str) -> dict[str, Any]:
    """The JSON object holding respCode (`resp` member or top level); not JSON -> retryable."""
    try:
        body = read_json(content.decode("utf-8"))
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("resp"), dict):
        body = body["resp"]
    # a respCode that is an object or a list is no code (and its text could nest without end)
    if not isinstance(body, dict) or not isinstance(body.get("respCode"), (str, int, float)):
        raise UnavailableError(
            f"{what}: answer without a respCode (proxy or error page?)", "check `base_url`", retryable=True
        )
    return body


def links(content: bytes, what: str) -> list[tuple[str, str]]:
    """(downUrl, token) pairs of a billList answer; [] for no data; errors raised per §4.2."""
    body = envelope(content, what)
    code = str(body["respCode"])
    if code == NO_DATA:
        return []
    if code not in SUCCESS:
        raise error_for(code, what)
    bill = body.get("accountBill", body)
    found = [_link(item, what) for item in (bill if isinstance(bill, list) else [bill])]
    if not found:
        raise DataError(f"{what}: success without a bill", "the provider answered an empty accountBill list")
    return found


def _link(item: Any, what: str) -> tuple[str, str]:
    url = item.get("downUrl") if isinstance(item, dict) else None
    token = item.get("token") if isinstance(item, dict) else None
    if not (isinstance(url, str) and url.strip() and isinstance(token, str) and token.strip()):
        raise DataError(f"{what}: success without a downUrl and token", "the provider's answer is malformed")
    return url, token


def raise_for_body(content: bytes, what: str) -> None:
    """A download that is really an API error body (JSON or XML with respCode): raise its error."""
    match = re.search(rb"<respCode>\s*(\w+)\s*</respCode>", content)
    code = match.group(1).decode("ascii") if match else str(envelope(content, what)["respCode"])
    if code in SUCCESS or code == NO_DATA:
        raise UnavailableError(
            f"{what}: the file server sent an API answer ({code}) instead of a file", "run again later"
        )
    raise error_for(code, what)
