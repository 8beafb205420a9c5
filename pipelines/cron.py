"""Cron schedules as Vertex AI reads them, checked before anything is sent, and their next run
times shown in the user's own time zone.

    cron = parse_cron("TZ=Europe/Berlin 0 3 * * 1")      # ValueError naming what is wrong
    cron.zone, cron.fields                               # "Europe/Berlin", "0 3 * * 1"
    next_runs(cron, after=datetime.now(UTC))             # the next three, aware datetimes
    show_times(times, zone=user_zone())                  # "2026-01-05 03:00 CET, ..."

Vertex takes unix-cron: five fields (minute hour day-of-month month day-of-week), optionally
behind a `TZ=` or `CRON_TZ=` prefix naming an IANA time zone (UTC without one). Numbers,
`*`, ranges, lists, steps and month or weekday names; not the `L`, `W`, `#` and `?` that some
cron dialects (and cronsim) also take, nor `@daily` shorthands.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_PREFIX = re.compile(r"(?:CRON_)?TZ=(?P<zone>\S+)\s+")
_VALUE = r"(?:\d+|[A-Za-z]{3})"
_TOKEN = re.compile(rf"(?:\*|{_VALUE}(?:-{_VALUE})?)(?:/\d+)?")
NUM_SHOWN = 3  # next run times shown on create and show


@dataclass(frozen=True)
class Cron:
    text: str  # as given, and as sent to Vertex
    zone: str  # the IANA zone its times are in
    fields: str  # the five fields, single-spaced


def parse_cron(text: str, *, what: str = "--cron") -> Cron:
    """`text` checked as Vertex would check it, or a one-line ValueError naming the part."""
    text = text.strip()
    prefix = _PREFIX.match(text)
    zone = "UTC"
    if prefix:
        zone = prefix["zone"]
        check_zone(zone, what=f"{what} {text!r}")
    elif text.startswith(("TZ=", "CRON_TZ=")):
        raise ValueError(f"{what} {text!r}: expected TZ=ZONE followed by five fields")
    fields = text[prefix.end() if prefix else 0 :].split()
    if len(fields) != len(FIELDS):
        raise ValueError(
            f"{what} {text!r}: expected 5 fields ({' '.join(FIELDS)}), got {len(fields)}"
        )
    for name, field in zip(FIELDS, fields, strict=True):
        if not all(_TOKEN.fullmatch(token) for token in field.split(",")):
            raise ValueError(f"{what} {text!r}: bad {name} field {field!r}")
    cron = Cron(text=text, zone=zone, fields=" ".join(fields))
    _check_values(cron, what=f"{what} {text!r}")
    return cron


def check_zone(zone: str, *, what: str) -> ZoneInfo:
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{what}: {zone!r} is not an IANA time zone (e.g. Europe/Berlin)"
        ) from None


def _check_values(cron: Cron, *, what: str) -> None:
    """Ranges and names, with cronsim's own parser (e.g. hour 24, month 13, day FOO)."""
    from cronsim import CronSim, CronSimError

    try:
        CronSim(cron.fields, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as err:
        name = str(err).removeprefix("Bad ")  # cronsim says "Bad hour"
        values = dict(zip(FIELDS, cron.fields.split(), strict=True))
        field = f" {values[name]!r}" if name in values else ""
        raise ValueError(f"{what}: bad {name} field{field}") from None


def next_runs(
    cron: Cron,
    *,
    after: datetime,
    until: datetime | None = None,
    count: int = NUM_SHOWN,
) -> list[datetime]:
    """The first `count` run times strictly after `after` (and not after `until`), in the
    cron's zone; daylight-saving changes as cron handles them."""
    from cronsim import CronSim

    times = []
    start = after.astimezone(ZoneInfo(cron.zone))
    for when in CronSim(cron.fields, start):
        if len(times) == count or (until is not None and when > until):
            break
        if when > after:
            times.append(when)
    return times


def user_zone(environ: Mapping[str, str] = os.environ) -> tzinfo:
    """The user's time zone: `TZ` when it names an IANA zone, else this machine's."""
    name = environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return datetime.now().astimezone().tzinfo or UTC


def show_time(when: datetime, *, zone: tzinfo) -> str:
    return when.astimezone(zone).strftime("%a %Y-%m-%d %H:%M %Z")


def parse_time(text: str, *, what: str, zone: tzinfo) -> datetime:
    """An ISO 8601 time (`2026-01-05T03:00`, with or without an offset; without one, in
    `zone`) as an aware datetime."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{what} {text!r}: expected an ISO 8601 time like 2026-01-05T03:00"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=zone)


def rfc3339(when: datetime) -> str:
    """`when` in UTC as the REST API writes timestamps."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")
