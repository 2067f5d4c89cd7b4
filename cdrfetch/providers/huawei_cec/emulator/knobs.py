"""The knobs of the Huawei CC-FS emulator: the faults and file shapes tests and the sandbox can set."""

from __future__ import annotations


class Knobs:
    """Defaults of every emulator knob (spec §8.6); each is a plain attribute of the emulator."""

    credentials: dict[str, str] = {"sandbox-ak": "sandbox-sk"}  # noqa: RUF012 (copied per instance)
    data_tz = "UTC"
    file_date_tz: str | None = None  # zone of the file-name date; None: data_tz, the server's own zone
    file_date_offset_days = 0
    max_skew = 900.0
    clock_offset = 0.0
    lock_after, lock_window, lock_duration = 5, 600.0, 600.0
    ready_after, ready_after_polls = 0.3, 1
    never_ready = empty = False
    throttle_query = throttle_download = 0
    truncate_zip: str | None = None  # "short" | "lying"
    corrupt_zip = False
    damage_limit: int | None = None  # how many downloads truncate/corrupt affect (None: all)
    error_as_octet = reject_auth = lock_now = False
    result_code: str | None = None
    result_param = ""  # the {param} of an injected result code's description
    header, bom, gbk, short_rows, malformed = True, False, False, False, False
    extra_columns = 0
    part_rows: int | None = None
    rows_min, rows_max = 5, 40  # calls a day (raise both for volume: `--knob rows_min=5000 --knob rows_max=6000`)
    tls_cert: tuple[str, str] | None = None  # (certificate PEM, key PEM): serve HTTPS with them
