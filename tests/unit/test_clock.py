"""The one RFC 3339 parser: Kubernetes Time and MicroTime in, aware datetimes out."""

from datetime import UTC, datetime

import pytest

from recycler_job.clock import format_micro_time, format_time, parse_time


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02t03:04:05z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05.5Z", datetime(2024, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)),
        ("2024-01-02T03:04:05.123456789Z", datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        ("2024-01-02T05:04:05+02:00", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05", None),
        ("2024-01-02", None),
        ("2024-13-02T03:04:05Z", None),
        ("20240102T030405Z", None),
        ("", None),
        (None, None),
        (1704164645, None),
    ],
)
def test_parse_time(text: object, expected: datetime | None) -> None:
    assert parse_time(text) == expected


def test_formats_round_trip() -> None:
    when = datetime(2026, 11, 29, 12, 0, 0, 123456, tzinfo=UTC)
    assert parse_time(format_micro_time(when)) == when
    assert parse_time(format_time(when)) == when.replace(microsecond=0)
