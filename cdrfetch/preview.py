"""What a run would use and do, shown without doing it: the resolved settings (secrets masked) for
`config`, and `pull --dry-run` (window, chunks, the requests of each chunk, where each table lands)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cdrfetch.config import Resolved
    from cdrfetch.destinations import Destination
    from cdrfetch.providers.base import Provider
    from cdrfetch.windows import Window

MASK = "********"


def setting_rows(cls: type[Provider], resolved: Resolved) -> list[dict[str, Any]]:
    """Every setting of `cls`: its value (secrets masked), its source, whether it is a secret."""
    rows = []
    for setting in cls.all_settings():
        value = resolved[setting.name]
        shown = None if value is None else (MASK if setting.secret else value)
        source = resolved.source(setting.name) if value is not None else ("MISSING" if setting.is_required else "unset")
        rows.append({"setting": setting.name, "value": shown, "source": source, "secret": setting.secret})
    return rows


def dry_run(cls: type[Provider], settings: Resolved, window: Window, destination: Destination) -> int:
    """`pull --dry-run`, in the profile's zone; no request is made and nothing is written."""
    from cdrfetch.destinations import Where
    from cdrfetch.fleet import chunks_of

    chunks = chunks_of(cls, settings, window)
    zone, account = window.tz, cls.account_of(settings)
    print(f"{cls.name} account {account}: {window.start.astimezone(zone)} .. {window.end.astimezone(zone)}")
    rows = setting_rows(cls, settings)
    print("settings:")
    for row in rows:
        if row["value"] is not None:
            print(f"  {row['setting']} = {row['value']}  ({row['source']})")
    print(f"{len(chunks)} chunk(s):")
    for chunk in chunks:
        print(f"  {chunk.label}: {chunk.start.astimezone(zone)} .. {chunk.end.astimezone(zone)}")
    if cls.flow:
        values = {row["setting"]: row["value"] for row in rows}
        print("each chunk makes these requests:")
        for step in cls.flow:
            print(f"  {step.format_map(values)}")
    print("output:")
    for table, place in destination.planned(cls.output_tables(), Where.of_window(cls.name, account, window)).items():
        print(f"  {table}: {place}")
    print("dry run: nothing was requested or written")
    return 0
