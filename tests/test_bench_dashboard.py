"""``orders-live bench --dashboard``: its arithmetic on synthetic inputs (fast tier), and a short
run of the real thing, the built dashboard in Debian's chromium (browser tier, skipped without
chromium or a built dashboard)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from orders_live.bench.dashboard_page import CHROMIUM
from orders_live.bench.dashboard_stats import (
    PARTS,
    DashboardCase,
    burst_tail_ms,
    commit_ms,
    finals,
    latencies,
    markdown,
    metrics,
    shares,
    summarise,
    write_report,
)

DIST = Path(__file__).resolve().parents[1] / "frontend" / "dist"


def case(**overrides: object) -> DashboardCase:
    fields: dict[str, object] = {
        "name": "500 rows, 5/s",
        "rows": 500,
        "rendered": 500,
        "rate": 5.0,
        "window_s": 20.0,
        "changes": 100,
        "seen": 100,
        "shares": {"busy": 0.12, "script": 0.03, "layout": 0.05, "style": 0.02},
        "p50_ms": 12.0,
        "p95_ms": 40.0,
        "max_ms": 61.0,
    }
    return DashboardCase(**{**fields, **overrides})  # type: ignore[arg-type]


@pytest.mark.fast
def test_each_share_is_its_counters_difference_over_the_wall_time() -> None:
    before = {"TaskDuration": 1.0, "ScriptDuration": 0.5, "LayoutDuration": 0.2, "RecalcStyleDuration": 0.1}
    after = {"TaskDuration": 3.0, "ScriptDuration": 1.0, "LayoutDuration": 1.2, "RecalcStyleDuration": 0.3}
    assert shares(before, after, 10.0) == pytest.approx({"busy": 0.2, "script": 0.05, "layout": 0.1, "style": 0.02})
    with pytest.raises(ValueError, match="must last"):
        shares(before, after, 0.0)


@pytest.mark.fast
def test_get_metrics_answer_becomes_a_mapping() -> None:
    answer = {"metrics": [{"name": "TaskDuration", "value": 1.5}, {"name": "Nodes", "value": 800}]}
    assert metrics(answer) == {"TaskDuration": 1.5, "Nodes": 800.0}
    assert set(PARTS.values()) == {"TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration"}


@pytest.mark.fast
def test_commit_time_is_updated_at_in_epoch_milliseconds() -> None:
    assert commit_ms("1970-01-01T00:00:01.250Z") == 1250.0
    assert commit_ms("2026-12-04T21:00:00.000+00:00") == commit_ms("2026-12-04T21:00:00.000Z")


@pytest.mark.fast
def test_latencies_cover_the_changes_seen_and_summarise_by_nearest_rank() -> None:
    commits = {n: 1000.0 + n for n in range(20)}
    seen = {n: 1000.0 + n + (n + 1) * 5 for n in range(19)}  # change 19 never showed
    values = latencies(commits, seen)
    assert sorted(values) == [5.0 * k for k in range(1, 20)]
    assert summarise(values) == (50.0, 95.0, 95.0)
    assert all(math.isnan(v) for v in summarise([]))


@pytest.mark.fast
def test_a_burst_owes_each_orders_last_change_by_version_not_by_send_order() -> None:
    # Changes 0..5 to orders 7 and 8; change 4 (order 7) committed before change 2 did.
    versions = {0: (7, 2), 1: (8, 2), 2: (7, 4), 3: (8, 3), 4: (7, 3), 5: (8, 4)}
    assert finals(versions) == {2, 5}


@pytest.mark.fast
def test_the_burst_tail_runs_from_the_last_commit_to_the_last_row_on_screen() -> None:
    commits = {1: 100.0, 2: 180.0, 3: 150.0}
    assert burst_tail_ms(commits, {1: 300.0, 2: 420.0, 3: 400.0}) == 240.0
    assert burst_tail_ms(commits, {1: 300.0, 2: 420.0}) is None  # not all on screen
    assert burst_tail_ms({}, {}) is None


@pytest.mark.fast
def test_a_case_is_valid_only_when_every_change_owed_was_seen() -> None:
    assert case().valid
    assert not case(seen=99).valid
    assert not case(changes=0, seen=0).valid  # a rate case that wrote nothing measured nothing
    assert case(name="500 rows, idle", rate=0.0, changes=0, seen=0, p50_ms=math.nan).valid


@pytest.mark.fast
def test_the_report_is_a_table_and_json_with_nan_as_null(tmp_path: Path) -> None:
    burst = case(name="500 rows, burst", rate=None, p50_ms=math.nan, last_on_screen_ms=412.4, seen=99)
    table = markdown([case(), burst])
    lines = table.splitlines()
    assert lines[0].startswith("| case | rows (in DOM) | changes/s | busy | script | layout | style |")
    assert lines[2] == "| 500 rows, 5/s | 500 (500) | 5 | 12 % | 3 % | 5 % | 2 % | 12 / 40 / 61 | – | 100/100 | yes |"
    assert lines[3] == (
        "| 500 rows, burst | 500 (500) | burst | 12 % | 3 % | 5 % | 2 % | – / 40 / 61 | 412 | 99/100 | no |"
    )
    path = write_report([case(), burst], tmp_path, "orders-live bench --dashboard", "dashboard-before")
    assert path == tmp_path / "dashboard-before.json"
    body = json.loads(path.read_text())
    assert body["command"] == "orders-live bench --dashboard"
    assert [c["valid"] for c in body["cases"]] == [True, False]
    assert body["cases"][1]["p50_ms"] is None
    assert path.with_suffix(".md").read_text() == f"`orders-live bench --dashboard`\n\n{table}"


@pytest.mark.fast
def test_a_case_whose_page_stopped_answering_has_no_figures() -> None:
    from orders_live.bench.dashboard import Swamped, unanswered

    swamped = unanswered(Swamped("500 rows, burst", 1000, 500), 500, None)
    assert not swamped.valid
    assert swamped.changes == 1000 and swamped.seen == 0
    assert "did not answer" in swamped.notes[0]
    row = markdown([swamped]).splitlines()[2]
    assert row == "| 500 rows, burst | 500 (500) | burst | – | – | – | – | – / – / – | – | 0/1,000 | no |"


@pytest.mark.fast
def test_without_chromium_or_a_built_dashboard_the_bench_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orders_live.bench import dashboard_page
    from orders_live.bench.dashboard_page import MissingBrowser, check_prerequisites

    monkeypatch.setattr(dashboard_page, "CHROMIUM", tmp_path / "no-chromium")
    with pytest.raises(MissingBrowser, match=r"no Chromium at .*apt-get install chromium"):
        check_prerequisites(tmp_path)
    (tmp_path / "chromium").write_text("")
    monkeypatch.setattr(dashboard_page, "CHROMIUM", tmp_path / "chromium")
    with pytest.raises(MissingBrowser, match=r"not built .*npm run build"):
        check_prerequisites(tmp_path / "dist")


@pytest.mark.browser
@pytest.mark.timeout(180)
@pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
@pytest.mark.skipif(
    not (DIST / "index.html").is_file(), reason="the dashboard is not built: cd frontend && npm run build"
)
async def test_a_short_run_sees_every_change_on_screen(mongo_url: str, tmp_path: Path) -> None:
    from orders_live.bench.bulk import insert_orders
    from orders_live.bench.dashboard import Plan, run_dashboard

    async def fresh(name: str) -> str:
        return mongo_url  # one size: the test's own database

    plan = Plan(sizes=(40,), rates=(5.0, 20.0), window_s=2.0, burst=80)
    cases = await run_dashboard(fresh, insert_orders, DIST, plan)

    assert [c.name for c in cases] == ["40 rows, idle", "40 rows, 5/s", "40 rows, 20/s", "40 rows, burst"]
    for c in cases:
        assert c.valid, (c.name, c.notes)
        assert c.rows == 40 and 1 <= c.rendered <= 40  # a virtualised table renders what fits
        assert set(c.shares) == {"busy", "script", "layout", "style"}
        assert all(0 <= share <= 1.05 for share in c.shares.values()), c.shares
        assert c.shares["busy"] >= c.shares["script"]
    assert [c.changes for c in cases[:3]] == [0, 10, 40]
    assert all(c.seen == c.changes for c in cases)
    # 80 changes to 40 orders: each order's last is owed where it ends in view (the table holds
    # only the rows in view: as many as it held before the burst)
    assert cases[3].changes == min(40, cases[3].rendered)
    assert cases[3].last_on_screen_ms is not None and cases[3].last_on_screen_ms >= 0
    assert all(c.p50_ms <= c.p95_ms <= c.max_ms for c in cases[1:])
    path = write_report(cases, tmp_path, "orders-live bench --dashboard")
    assert len(json.loads(path.read_text())["cases"]) == 4
