"""A run of the bench: its cases in turn against one deployment, once per worker count, the
open-files limit and the service's ``max_connections`` set for the largest case first; then
the report (``bench/report.py``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from orders_live.bench.capacity import max_connections_for, raise_open_files, workers_for
from orders_live.bench.report import markdown, write_report
from orders_live.bench.runner import SCOPE_LABELS, SETTLE, Bench, Case
from orders_live.bench.scale_report import scale_lines
from orders_live.bench.stats import attach_baselines
from orders_live.process_limits import SPARE_FILES


async def run_bench(
    cases: list[Case], out: Path, bench: Bench, workers: list[int] | None = None, terminate: bool = False
) -> None:
    """Each case in turn against ``bench``'s deployment, once per worker count in ``workers``
    (a service started afresh for each); with ``terminate``, the last case ends with SIGTERM to
    the service, its clients connected. The report goes to ``out``."""
    results = []
    largest = max(case.clients for case in cases)
    limit = raise_open_files(largest)  # inherited by the service and the generators
    bench.max_connections = min(max_connections_for(largest), limit - SPARE_FILES)
    counts = workers or [workers_for(largest, limit)]
    if workers is None and counts != [1]:
        print(f"{largest} clients do not fit one process's {limit} open files: serve --workers {counts[0]}")
    with tempfile.TemporaryDirectory(prefix="orders-live-bench-") as folder:
        for round_, count in enumerate(counts):
            bench.workers = count
            try:
                await bench.start_service(Path(folder) / f"workers-{count}")
                for n, case in enumerate(cases):
                    scope = f" ({SCOPE_LABELS[case.scope]})" if case.scope is not None and bench.scopes else ""
                    served = f", {count} workers" if count != 1 else ""
                    print(
                        f"running {case.transport}{scope} × {case.clients} clients at {case.rate:g} writes/s{served} …",
                        flush=True,
                    )
                    last = round_ == len(counts) - 1 and n == len(cases) - 1
                    try:
                        result = await bench.run(case, terminate=terminate and last)
                    except BaseException:
                        print(
                            f"the service's log ends:\n{_log_tail(Path(folder) / f'workers-{count}' / 'service.log')}"
                        )
                        raise
                    results.append(result)
                    print(markdown([result]).splitlines()[-1], flush=True)
                    print(scale_lines([result]), flush=True)
            finally:
                await bench.stop_service()
    attach_baselines(results)
    write_report(out, results, bench.processes, bench.sample, bench.database_url, SETTLE)


def _log_tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(none)"
