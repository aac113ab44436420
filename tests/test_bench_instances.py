"""Fast tier: ``bench --instances``' arithmetic and report, on small synthetic inputs, and its CPU
accounting of processes that ended during the window."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from orders_live.bench.instance_figures import (
    achieved_rate,
    lag_figures,
    markdown,
    parse_counts,
    parse_rates,
    per_follower,
    write_instances_report,
    writer_kept,
)
from orders_live.bench.instances import tree_cpu

pytestmark = pytest.mark.fast


def test_instance_counts_are_positive_and_given_once() -> None:
    assert parse_counts("1,4,16") == [1, 4, 16]
    assert parse_counts(" 16, 1 ") == [16, 1]
    for bad in ("0", "1,,4", "-1", "two", "1.5"):
        with pytest.raises(ValueError, match="is not a positive number of instances"):
            parse_counts(bad)
    with pytest.raises(ValueError, match="4 is given twice"):
        parse_counts("4,1,4")


def test_rates_are_positive_numbers() -> None:
    assert parse_rates("100,500") == [100.0, 500.0]
    assert parse_rates("2.5") == [2.5]
    for bad in ("0", "-5", "fast", "nan", "inf", "100,"):
        with pytest.raises(ValueError, match=r"is not a (positive )?rate"):
            parse_rates(bad)


def test_the_rate_sent_is_read_from_the_stamps() -> None:
    assert achieved_rate([10.0 + n / 100 for n in range(101)]) == pytest.approx(100.0)
    assert achieved_rate([5.0]) is None
    assert achieved_rate([5.0, 5.0]) is None


def test_a_writer_kept_its_rate_when_every_write_went_out_near_the_rate() -> None:
    assert writer_kept(100.0, 2000, 2000, 99.0)
    assert not writer_kept(100.0, 2000, 2000, 90.0)  # sent late
    assert not writer_kept(100.0, 2000, 1999, 100.0)  # a write failed
    assert not writer_kept(100.0, 2000, 2000, None)


def test_lags_are_pooled_and_the_worst_instance_shows() -> None:
    quick = [float(n % 10) for n in range(100)]
    slow = [500.0] * 2 + [1.0] * 98
    figures = lag_figures([quick, quick, quick, slow])
    assert figures["count"] == 400
    assert figures["max"] == 500.0
    assert figures["p99"] == 9.0  # two slow of 400: the pooled p99 hides them
    assert figures["worst_instance_p99"] == 500.0
    assert math.isnan(lag_figures([[], []])["worst_instance_p99"])


def _result(database: str, instances: int, rate: float, cost: float | None) -> dict[str, Any]:
    lag = {"p50": 3.0, "p95": 8.0, "p99": 9.0, "max": 12.0, "count": 100.0, "worst_instance_p99": 10.0}
    return {
        "database": database,
        "instances": instances,
        "rate": rate,
        "achieved_rate": rate,
        "writer_kept": True,
        "database_cpu_ms_per_commit": cost,
        "database_cpu_cores": 0.5,
        "lag_ms": lag,
        "commit_lag_ms": lag if database == "postgres" else None,
        "caught_up_after_s": 0.2,
        "tail_checked": True,
        "lost": 0,
        "duplicated": 0,
        "out_of_order": 0,
        "instances_cpu_cores": 0.1 * instances,
        "machine_busy": 0.5,
        "own_share": 0.3,
        "writer_and_probes_cpu_cores": 0.2,
        "bench_share": 0.4,
        "valid": True,
    }


def test_what_a_follower_costs_is_the_slope_of_the_cost_per_commit_against_k() -> None:
    results = [_result("postgres", k, 100.0, 0.5 + 0.25 * k) for k in (1, 4, 16)]
    results += [_result("postgres", 1, 500.0, 0.4)]  # one K only: no line
    results += [_result("mongodb", k, 100.0, None) for k in (1, 4)]  # not measured: no line
    (line,) = per_follower(results)
    assert (line["database"], line["rate"]) == ("postgres", 100.0)
    assert line["base_ms"] == pytest.approx(0.5)
    assert line["per_follower_ms"] == pytest.approx(0.25)


def test_a_run_replaces_its_databases_earlier_run_and_keeps_the_others(tmp_path: Path) -> None:
    def run(database: str, cost: float) -> dict[str, Any]:
        results = [_result(database, k, 100.0, cost * k) for k in (1, 4)]
        return {"database": database, "command": f"bench {database}", "date": "d", "machine": "m", "results": results}

    write_instances_report(run("nx-27017", 1.0), tmp_path)
    write_instances_report(run("postgres", 0.1), tmp_path)
    text = write_instances_report(run("nx-27017", 2.0), tmp_path)
    runs = json.loads((tmp_path / "instances.json").read_text())["runs"]
    assert [r["database"] for r in runs] == ["postgres", "nx-27017"]
    assert runs[1]["results"][1]["database_cpu_ms_per_commit"] == 8.0
    assert (tmp_path / "instances.md").read_text() == text == markdown(runs)
    rows = [line for line in text.splitlines() if line.startswith("| postgres") or line.startswith("| nx-27017")]
    assert len(rows) == 4
    assert "8.00 ms" in rows[3]
    assert "3 / 9 / 12 ms (3 / 9 / 12)" in rows[0]  # PostgreSQL's lag from the commit, in brackets
    assert "nx-27017 at 100 writes/s: database CPU per commit ≈ 0.00 ms + 2.000 ms × K" in text


def test_an_earlier_run_without_the_bench_cpu_figures_is_still_shown() -> None:
    earlier = _result("postgres", 1, 100.0, 1.0)
    del earlier["writer_and_probes_cpu_cores"], earlier["bench_share"]
    text = markdown([{"database": "postgres", "command": "c", "date": "d", "machine": "m", "results": [earlier]}])
    assert "| – | 50% (–) | yes |" in text


def test_a_case_that_failed_is_a_row_of_its_own_and_no_point_on_the_line() -> None:
    failed = {"database": "nx-27017", "instances": 16, "rate": 500.0, "error": "TimeoutError()"}
    results = [_result("nx-27017", k, 500.0, 1.0 + k) for k in (1, 4)] + [failed]
    run = {"database": "nx-27017", "command": "c", "date": "d", "machine": "m", "results": results}
    text = markdown([run])
    assert "| nx-27017 | 16 | 500 | failed: TimeoutError() |" in text
    (line,) = per_follower(results)
    assert line["per_follower_ms"] == pytest.approx(1.0)


def test_the_cpu_of_a_child_that_ended_is_counted() -> None:
    me = psutil.Process()
    before = tree_cpu(me)
    burn = "import time\nwhile time.process_time() < 0.4: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)  # ended and waited for before the second look
    assert tree_cpu(me) - before >= 0.3
