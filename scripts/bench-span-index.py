#!/usr/bin/env python3
"""What SQLite's covering index of the spans' analytics columns (`spans_analytics`) costs a write: the spans of a Tally
metadata file (`--from`, e.g. a data directory `scripts/bench-trace-metrics.py` made) inserted again into a new table
of the same shape, in batches of 500 (1 KB pages, WAL, synchronous NORMAL, as Tally opens its files), without and
with the index, alternating; the process's CPU and the wall time of each.

    .venv-interop/bin/python scripts/bench-span-index.py --from <data>/metadata.sqlite
"""
import argparse, os, sqlite3, tempfile, time

COLUMNS = ("trace_id, span_id, parent_span_id, name, type, status, start_time, end_time, content, model_name, model_provider, "
           "input_cost, output_cost, total_cost")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--from", dest="source", required=True)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    rows = sqlite3.connect(args.source).execute(f"SELECT {COLUMNS} FROM spans").fetchall()
    work = tempfile.mkdtemp(prefix="span-index-")
    for r in range(args.rounds):
        for indexed in (False, True):
            path = os.path.join(work, f"{r}-{int(indexed)}.sqlite")
            db = sqlite3.connect(path, isolation_level=None)
            for pragma in ("page_size=1024", "journal_mode=WAL", "synchronous=NORMAL"):
                db.execute("PRAGMA " + pragma)
            db.execute("CREATE TABLE spans (trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_span_id TEXT, name TEXT NOT NULL, type TEXT, "
                       "status TEXT NOT NULL, start_time INTEGER NOT NULL, end_time INTEGER NOT NULL, content BLOB NOT NULL, model_name TEXT, "
                       "model_provider TEXT, input_cost REAL, output_cost REAL, total_cost REAL, PRIMARY KEY (trace_id, span_id))")
            if indexed:
                db.execute("CREATE INDEX spans_analytics ON spans (trace_id, start_time, end_time, name, status, type, model_name, "
                           "model_provider, input_cost, output_cost, total_cost)")
            cpu, wall = time.process_time(), time.perf_counter()
            for i in range(0, len(rows), 500):
                db.execute("BEGIN")
                db.executemany(f"INSERT INTO spans ({COLUMNS}) VALUES ({', '.join('?' * 14)})", rows[i:i + 500])
                db.execute("COMMIT")
            print({"index": indexed, "rows": len(rows), "cpu_s": round(time.process_time() - cpu, 3), "wall_s": round(time.perf_counter() - wall, 3)})
            db.close()


if __name__ == "__main__":
    main()
