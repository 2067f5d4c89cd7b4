"""The provider contract: what every provider declares and the rules it follows.

A provider turns one chunk of time into normalized record batches. It writes its protocol as
plain readable steps and leaves every cross-cutting mechanism to the core, reached through the
`Client` it is given:

Rules every provider follows (they live here, once, and are not repeated in each provider):

* It MUST sign with a `requests.auth.AuthBase` subclass that takes its clock from `client.clock`,
  so known-answer vectors can be tested, and that computes a fresh signature on every call
  (timestamps expire; the core retries by re-sending, which re-signs).
* It MUST NOT retry, sleep, poll, spool to disk or create temp files itself. Every request is one
  `client.send` inside `client.retry` (the shared budget, backoff and Retry-After); waits are
  `client.poll` (on the client's monotonic clock); files come from `client.download` or
  `client.save`, and a file that must be checked after download (archives, digests) from
  `client.verified_download`, whose scratch directory holds everything unpacked from it.
* It MUST NOT print. It logs through `client.log`; secrets never reach a log line or an error
  (the core redacts `sig`, `Sign`, `Authorization`, tokens and every secret setting, but a
  provider never builds a message around a secret in the first place).
* It MUST raise `CdrfetchError` subclasses (errors.py) with a hint for every documented provider
  error code, mapping each to the class its spec decides: auth -> AuthError (77), configuration
  -> ConfigError (78), bad data -> DataError (65), provider failure -> UnavailableError (69, with
  `retryable=True` when worth retrying), throttling / not ready -> TemporaryError (75).
* It MUST NOT retry an authentication failure blindly (some servers lock the caller's IP).
* Parsing is strict about mandatory fields and tolerant about optional ones. A bad row raises
  DataError naming the file (or page) and the line, never a silent skip.
* Every field the provider sent and the schema does not map goes into `extra`.
* `record_id` is deterministic: the same provider data gives the same id on every pull.
* It drops a row only where its spec documents the provider's filter; everything else inside the
  chunk is kept (a guess about an undocumented filter loses data). The core removes duplicate
  `record_id`s within a run.
* It reports run facts through the client: `client.warn` (warnings), `client.note` (facts such as
  job ids or ETags) and `client.partial` (the provider says its data is incomplete: exit 3 unless
  `allow_partial`). It never writes the run summary itself.
* Module top level imports are light: the CLI discovers providers without importing them, but
  `cdrfetch <provider> --help` does import the provider module.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from cdrfetch.windows import Window, split

if TYPE_CHECKING:
    import pyarrow as pa

    from cdrfetch.client import Client
    from cdrfetch.config import Resolved
    from cdrfetch.records import Batch
    from cdrfetch.sandbox.server import Emulator


@dataclass(frozen=True)
class Setting:
    """One provider setting. Secrets come only from env, `*_FILE`, or the keyring.

    `kind` converts the raw text of env vars and `--set` (str, int, float or bool); numbers are
    refused outside [`minimum`, `maximum`] (the config resolver checks, once, for every provider).
    `required` defaults to "no default given".
    """

    name: str
    help: str
    secret: bool = False
    default: Any = None
    kind: type = str
    choices: tuple[str, ...] | None = None
    required: bool | None = None
    minimum: float | None = None
    maximum: float | None = None

    @property
    def is_required(self) -> bool:
        """True when a run cannot start without a value."""
        return self.default is None if self.required is None else self.required


# Settings every provider has; a provider re-declaring one of these names overrides it.
COMMON_SETTINGS: tuple[Setting, ...] = (
    Setting("tz", "zone of naive times in windows and provider data", default="UTC"),
    Setting("timeout", "seconds to wait for each HTTP response", default=30.0, kind=float, minimum=0.01),
    Setting("retries", "attempts after the first for retryable failures", default=4, kind=int, minimum=0, maximum=100),
    Setting("backoff", "first retry delay in seconds (doubles, with jitter)", default=1.0, kind=float, minimum=0),
    Setting("poll_timeout", "seconds to wait for an export job", default=900.0, kind=float, minimum=0.01),
    Setting("poll_interval", "first delay between job status checks", default=2.0, kind=float, minimum=0.001),
    Setting("ca_bundle", "PEM file of CA certificates to trust for this provider", required=False),
    Setting("insecure", "skip TLS verification (never in production)", default=False, kind=bool),
    Setting("lookback", "how far --since-last reaches back before the last run, for late records", default="1h"),
    Setting("deadline", "seconds one API answer may take, request to last byte", default=600.0, kind=float, minimum=1),
    Setting("download_deadline", "seconds one file download may take", default=7200.0, kind=float, minimum=1),
    Setting("max_answer_mb", "largest API answer accepted, in MiB", default=64.0, kind=float, minimum=0.01),
    Setting("max_download_mb", "largest file download accepted, in MiB", default=8192.0, kind=float, minimum=0.01),
    Setting(
        "allow_http",
        "allow http:// to a host that is not loopback (credentials in the clear)",
        default=False,
        kind=bool,
    ),
    Setting("allow_partial", "exit 0 when the provider reports partial data (still warned)", default=False, kind=bool),
    Setting("layout", "file names under an output directory or prefix", default="{provider}/{account}/{label}.{ext}"),
    Setting("metrics_file", "write each run's metrics here (Prometheus textfile collector, *.prom)", required=False),
    Setting("ping_url", "healthchecks-style URL pinged at the start and end of each run", required=False),
)


class Provider(abc.ABC):
    """Base of every provider: a built-in exports its subclass as `PROVIDER` from `<package>/provider.py`."""

    name: ClassVar[str]  # CLI group, config section, `provider` column: "huawei-cec"
    title: ClassVar[str]  # human name: "Huawei CEC (CC-FS)"
    settings: ClassVar[tuple[Setting, ...]]  # provider-specific settings (COMMON_SETTINGS are added)
    account_setting: ClassVar[str]  # the setting whose value fills the `account` column
    # Longest chunk the provider accepts. A provider whose users may shorten it declares the setting
    # `max_window_days` (with its `maximum`); the core then cuts chunks of that many days.
    max_window: ClassVar[timedelta | None] = None
    # The requests one chunk makes, in order, as `pull --dry-run` shows them: text with {setting}
    # placeholders (never a secret's); empty for a provider that does not describe its flow.
    flow: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: Resolved, client: Client) -> None:
        self.config = settings
        self.client = client

    @classmethod
    def all_settings(cls) -> tuple[Setting, ...]:
        """The provider's settings followed by the common ones it does not override."""
        own = {setting.name for setting in cls.settings}
        return cls.settings + tuple(s for s in COMMON_SETTINGS if s.name not in own)

    @classmethod
    def output_tables(cls) -> Mapping[str, pa.Schema]:
        """Table name -> Arrow schema of everything this provider writes: `calls`, and side tables
        a provider adds by overriding this (importing their schemas here keeps pyarrow out of start-up)."""
        from cdrfetch.records import CALLS

        return {"calls": CALLS}

    @classmethod
    def account_of(cls, settings: Mapping[str, Any]) -> str:
        """The `account` these settings select; also keys the ledger, the run lock and the summary.

        Default: the value of `account_setting`. Override when the account is derived (Polycom: the
        host of `base_url`, so a port change does not start a new ledger history).
        """
        return str(settings[cls.account_setting])

    @property
    def account(self) -> str:
        """Value of the `account` column (and of the output path segment)."""
        return self.account_of(self.config)

    def chunk_length(self) -> timedelta | None:
        """`max_window_days` when the provider has that setting, else `max_window`."""
        days = self.config.get("max_window_days")
        return timedelta(days=int(days)) if days else self.max_window

    def chunks(self, window: Window) -> list[Window]:
        """Split the requested window into units of work. Default: slices of `chunk_length()`."""
        return split(window, self.chunk_length())

    @abc.abstractmethod
    def fetch(self, chunk: Window) -> Iterator[Batch]:
        """Yield normalized batches for `[chunk.start, chunk.end)`; one chunk, fully or not at all."""

    @classmethod
    def emulator_class(cls) -> type[Emulator]:
        """The provider's emulator: `EMULATOR` of the `emulator` module beside the provider module."""
        import importlib

        from cdrfetch.errors import UsageError

        package = cls.__module__.rpartition(".")[0]
        try:
            emulator: type[Emulator] = importlib.import_module(f"{package}.emulator").EMULATOR
        except (ImportError, AttributeError, TypeError):
            raise UsageError(f"{cls.name} has no sandbox emulator", "run it against the real service") from None
        return emulator

    def check(self) -> str:
        """Make one cheap authenticated request; return what it proved (for `doctor`)."""
        raise NotImplementedError(f"{self.name} has no credential check")
