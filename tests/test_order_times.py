"""How the service writes a moment (``iso_millis``): ISO-8601 in UTC, to the millisecond, with a
trailing Z, whatever the zone it was given in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from orders_live.domain.order import iso_millis

pytestmark = pytest.mark.fast


@pytest.mark.parametrize(
    ("moment", "written"),
    [
        (datetime(2026, 12, 5, 2, 7, 49, 123456, tzinfo=UTC), "2026-12-05T02:07:49.123Z"),
        (datetime(2026, 12, 5, 2, 7, 49, tzinfo=UTC), "2026-12-05T02:07:49.000Z"),
        (datetime(2026, 12, 5, 3, 7, 49, 999999, tzinfo=timezone(timedelta(hours=1))), "2026-12-05T02:07:49.999Z"),
        (datetime(2026, 12, 4, 23, 7, 49, 1000, tzinfo=timezone(timedelta(hours=-3))), "2026-12-05T02:07:49.001Z"),
        (datetime(2026, 12, 5, 2, 7, 49, 500), "2026-12-05T02:07:49.000Z"),  # naive: taken as UTC
        (datetime(5, 1, 2, 3, 4, 5, 6789, tzinfo=UTC), "0005-01-02T03:04:05.006Z"),  # four digits of year
    ],
)
def test_a_moment_is_written_in_utc_to_the_millisecond(moment: datetime, written: str) -> None:
    assert iso_millis(moment) == written
