#!/usr/bin/env python3
"""Sizes a Tally cluster (docs/scale-out.md) for a workload from measured per-component figures.

    scripts/size-cluster.py [--points-per-day 1e9] [--runs 100000] [--points-per-request 100] [--peak-factor 5] ...

Every capacity below defaults to a figure measured on this project's 2-core test machine (docs/benchmarks.md names
the command of each); pass your own measurements to size other hardware. The arithmetic is printed with the answer,
so each line can be checked by hand.
"""
import argparse
import math

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
w = p.add_argument_group("workload")
w.add_argument("--points-per-day", type=float, default=1e9)
w.add_argument("--runs", type=float, default=1e5, help="runs written to per day")
w.add_argument("--points-per-request", type=float, default=100, help="points in one logging request (MLflow's log-batch holds up to 1,000)")
w.add_argument("--peak-factor", type=float, default=5, help="peak rate over the day's mean")
w.add_argument("--headroom", type=float, default=0.5, help="fraction of a measured capacity planned for")
m = p.add_argument_group("measured capacities (defaults: this machine, docs/benchmarks.md)")
m.add_argument("--server-points-per-s", type=float, default=1.46e6,
               help="one server's MLflow log-batch ingest, 1,000 points per request (tally bench http)")
m.add_argument("--server-requests-per-s", type=float, default=2.27e3,
               help="one server's log-batch requests/s with 32 writers of their own runs (tally bench http --writers; measured with 1,000 points per request, so conservative for small requests)")
m.add_argument("--log-records-per-s", type=float, default=20_000,
               help="shared-log records/s one PostgreSQL takes, 64 records per commit from 4 writers (tally bench cluster-log)")
m.add_argument("--log-bytes-per-point", type=float, default=None,
               help="PostgreSQL bytes per logged point, row and index included (default: from the measured table below "
                    "by points per request: 10 → 30.9, 100 → 6.40, 1,000 → 4.32; tally bench cluster-log)")
m.add_argument("--segment-bytes-per-point", type=float, default=1.75, help="sealed segment bytes per dense point (tally bench engine)")
m.add_argument("--seal-points", type=float, default=6.7e6,
               help="points of a run's records that make its owner seal it however young (8 MB of records at 1.24 B a point: bench-cluster.py)")
m.add_argument("--max-unsealed-seconds", type=float, default=6 * 3600,
               help="--max-unsealed-seconds: a run's records older than this are sealed (bounds the log PostgreSQL keeps)")
m.add_argument("--reads-per-day", type=float, default=2e5, help="chart reads (runs opened, compared) per day")
m.add_argument("--cache-hit", type=float, default=0.9, help="fraction of run reads served by a server's local copy (--metrics-cache-mb)")
m.add_argument("--objects-per-cold-read", type=float, default=6,
               help="segment objects a server fetches to install a run it has no copy of (6 for a 10 M-point run: bench-cluster.py --reads)")
m.add_argument("--run-points", type=float, default=1e5, help="points of a run read cold (its whole sealed set is fetched)")
a = p.parse_args()
if a.log_bytes_per_point is None:
    # `tally bench cluster-log --points-per-record N --records-per-commit 64`, durable PostgreSQL, 2026-12-02:
    # postgres_bytes_per_record / N. Interpolated on log scales between the measured sizes.
    measured = [(10, 30.95), (100, 6.396), (1000, 4.320)]
    x = min(max(a.points_per_request, 10), 1000)
    for (x0, y0), (x1, y1) in zip(measured, measured[1:]):
        if x0 <= x <= x1:
            t = (math.log(x) - math.log(x0)) / (math.log(x1) - math.log(x0))
            a.log_bytes_per_point = math.exp(math.log(y0) + t * (math.log(y1) - math.log(y0)))
            break

day = 86_400
mean_pts = a.points_per_day / day
peak_pts = mean_pts * a.peak_factor
peak_req = peak_pts / a.points_per_request
rows = []


def line(what, value, how):
    rows.append((what, value, how))


line("mean points/s", f"{mean_pts:,.0f}", f"{a.points_per_day:,.0f} / 86,400")
line("peak points/s", f"{peak_pts:,.0f}", f"mean × {a.peak_factor:g}")
line("peak requests/s", f"{peak_req:,.0f}", f"peak points / {a.points_per_request:g} per request")
by_points = peak_pts / (a.server_points_per_s * a.headroom)
by_requests = peak_req / (a.server_requests_per_s * a.headroom)
servers = max(3, math.ceil(max(by_points, by_requests)) + 1)
line("servers", f"{servers}", f"max(points {by_points:.2f}, requests {by_requests:.2f}) at {a.headroom:.0%} of capacity, +1 for a loss, at least 3")
# The shared log: one row per run per commit; at worst one per request.
log_rows = peak_req
log_share = log_rows / (a.log_records_per_s * a.headroom)
line("PostgreSQL log rows/s (peak)", f"{log_rows:,.0f}", "≤ one per request (requests of one run in one commit share a row)")
line("PostgreSQL log load", f"{log_share:.2f} of one database", f"rows / ({a.log_records_per_s:,.0f} measured × {a.headroom:.0%})")
line("PostgreSQL log bytes/s (peak)", f"{peak_pts * a.log_bytes_per_point / 1e6:,.2f} MB/s", f"peak points × {a.log_bytes_per_point:.2f} B")
per_run = a.points_per_day / a.runs / day
seal_s = min(a.seal_points / max(1e-9, per_run), a.max_unsealed_seconds)
resident = mean_pts * seal_s * a.log_bytes_per_point
line("seconds a point waits for its seal", f"{seal_s:,.0f}", f"min({a.seal_points:,.0f} points at {per_run:.3f}/s per run, {a.max_unsealed_seconds:,.0f})")
line("PostgreSQL log resident", f"{resident / 1e9:,.2f} GB", "mean points/s × that wait × bytes per point (trimmed once sealed into S3)")
seals_day = a.runs * day / seal_s
line("S3 PUT/s (segments)", f"{seals_day / day:,.2f} mean", f"{a.runs:,.0f} runs each sealing every {seal_s:,.0f} s")
gets = a.reads_per_day * a.objects_per_cold_read * (1 - a.cache_hit) / day
line("S3 GET/s (cold reads)", f"{gets:,.2f} mean", f"{a.reads_per_day:,.0f} reads × {1 - a.cache_hit:.0%} without a local copy × {a.objects_per_cold_read:g} objects")
line("S3 GET bytes/s (cold reads)", f"{a.reads_per_day * (1 - a.cache_hit) * a.run_points * a.segment_bytes_per_point / day / 1e6:,.2f} MB/s mean",
     f"each fetches its run's whole sealed set: {a.run_points:,.0f} points × {a.segment_bytes_per_point} B")
month = a.points_per_day * 30 * a.segment_bytes_per_point
line("S3 storage per month", f"{month / 1e9:,.1f} GB", f"30 days × {a.segment_bytes_per_point} B per point (MLflow: ~250 B per point in SQL)")
line("PostgreSQL metadata rows/s", f"{peak_req:,.0f} peak", "each request updates its run's latest values (one row per run, not per point)")

width = max(len(r[0]) for r in rows)
for what, value, how in rows:
    print(f"{what.ljust(width)}  {value:>22}   {how}")
