"""Cron checks before anything is sent, and next run times in the user's zone.

.venv/bin/python -m pytest -q tests/pipelines/test_cron.py
"""

from datetime import UTC, datetime

import pytest

from pipelines.cron import next_runs, parse_cron, parse_time, rfc3339, show_time, user_zone


def test_a_zone_prefix_and_five_fields_are_what_vertex_gets():
    for text, zone in (
        ("TZ=Europe/Berlin 0 3 * * 1", "Europe/Berlin"),
        ("CRON_TZ=America/New_York 30 */6 1-7 JAN,JUL MON-FRI", "America/New_York"),
        ("15 2 * * *", "UTC"),
    ):
        cron = parse_cron(text)
        assert (cron.text, cron.zone) == (text, zone)
        assert len(cron.fields.split()) == 5


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("0 3 * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"),
        ("0 3 * * 1 2026", "got 6"),
        ("@weekly", "got 1"),
        ("TZ=Mars/Olympus 0 3 * * 1", "'Mars/Olympus' is not an IANA time zone"),
        ("TZ= 0 3 * * 1", "expected TZ=ZONE followed by five fields"),
        ("0 24 * * *", "bad hour field '24'"),
        ("61 3 * * *", "bad minute field '61'"),
        ("0 3 * 13 *", "bad month field '13'"),
        ("0 3 * * FOO", "bad day-of-week field 'FOO'"),
        ("0 3 L * *", "bad day-of-month field 'L'"),  # cronsim's dialect, not unix-cron
        ("0 3 * * 1#2", "bad day-of-week field '1#2'"),
        ("0 3 ? * 1", "bad day-of-month field '?'"),
    ],
)
def test_a_bad_cron_is_one_line_naming_the_part(text, says):
    with pytest.raises(ValueError) as caught:
        parse_cron(text)
    message = str(caught.value)
    assert message.startswith(f"--cron {text!r}: ") and says in message
    assert "\n" not in message


def test_next_runs_follow_the_schedules_zone_across_daylight_saving():
    cron = parse_cron("TZ=Europe/Berlin 0 3 * * 1")
    after = datetime(2026, 3, 20, 12, tzinfo=UTC)  # Berlin moves to summer time on 29 March
    times = next_runs(cron, after=after)
    assert [t.astimezone(UTC).isoformat() for t in times] == [
        "2026-03-23T02:00:00+00:00",  # 03:00 CET
        "2026-03-30T01:00:00+00:00",  # 03:00 CEST
        "2026-04-06T01:00:00+00:00",
    ]
    new_york = user_zone({"TZ": "America/New_York"})
    assert [show_time(t, zone=new_york) for t in times] == [
        "Sun 2026-03-22 22:00 EDT",
        "Sun 2026-03-29 21:00 EDT",
        "Sun 2026-04-05 21:00 EDT",
    ]


def test_next_runs_stop_at_the_end_time_and_exclude_the_start():
    cron = parse_cron("0 * * * *")
    after = datetime(2026, 1, 1, 10, tzinfo=UTC)
    until = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert [t.hour for t in next_runs(cron, after=after, until=until, count=5)] == [11, 12]


def test_times_given_without_an_offset_are_in_the_users_zone():
    berlin = user_zone({"TZ": "Europe/Berlin"})
    assert rfc3339(parse_time("2026-01-05T03:00", what="--start", zone=berlin)) == (
        "2026-01-05T02:00:00Z"
    )
    assert rfc3339(parse_time("2026-01-05T03:00Z", what="--start", zone=berlin)) == (
        "2026-01-05T03:00:00Z"
    )
    with pytest.raises(ValueError, match=r"^--end 'next monday': expected an ISO 8601 time"):
        parse_time("next monday", what="--end", zone=berlin)
