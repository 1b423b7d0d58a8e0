#!/usr/bin/env python3
"""Which failed writes make SQLite start an online backup over (docs/benchmarks.md, "Writers out of the pause").

A 5,000-row WAL database (1 KB pages, 10,169 of them) is copied with SQLite's backup API in steps of 500 pages; between steps the
source connection runs one kind of failed write. A kind that restarts the copy every step never finishes (stopped
after 40 steps). Prints, per kind, the steps taken, the first pages-left figures, the rows changed, and whether the
copy equals the source.

    python3 scripts/sqlite-backup-restarts.py
"""
import os
import sqlite3
import tempfile

TOO_MANY = 40


class Restarting(Exception):
    pass


def main():
    work = tempfile.mkdtemp(prefix="sqlite-backup-restarts-")
    src = sqlite3.connect(os.path.join(work, "src.db"), isolation_level=None)
    src.execute("PRAGMA page_size = 1024")
    src.execute("PRAGMA journal_mode = WAL")
    src.execute("CREATE TABLE t (x UNIQUE)")
    src.execute("BEGIN")
    for i in range(5000):
        src.execute("INSERT INTO t VALUES (?)", ("x" * 500 + str(i),))
    src.execute("COMMIT")
    taken = "x" * 500 + "7"

    def refused(sql, *args):
        try:
            src.execute(sql, args)
        except sqlite3.IntegrityError:
            pass

    kinds = {
        "read, ROLLBACK": lambda: (src.execute("BEGIN IMMEDIATE"), src.execute("SELECT count(*) FROM t").fetchall(),
                                   src.execute("ROLLBACK")),
        "one-row insert refused, ROLLBACK": lambda: (src.execute("BEGIN IMMEDIATE"),
                                                     refused("INSERT INTO t VALUES (?)", taken), src.execute("ROLLBACK")),
        "one row written, ROLLBACK": lambda: (src.execute("BEGIN IMMEDIATE"), src.execute("INSERT INTO t VALUES (1)"),
                                              src.execute("ROLLBACK")),
        "multi-row insert failing on its last row, ROLLBACK": lambda: (
            src.execute("BEGIN IMMEDIATE"),
            refused("INSERT INTO t SELECT 'new' || x FROM t WHERE rowid < 50 UNION ALL SELECT ?", taken),
            src.execute("ROLLBACK")),
        "multi-row insert failing on its last row, COMMIT": lambda: (
            src.execute("BEGIN IMMEDIATE"),
            refused("INSERT INTO t SELECT 'new' || x FROM t WHERE rowid < 50 UNION ALL SELECT ?", taken),
            src.execute("COMMIT")),
    }
    for n, (kind, write) in enumerate(kinds.items()):
        path = os.path.join(work, "copy%d.db" % n)
        dst = sqlite3.connect(path)
        left = []
        changes = src.total_changes

        def progress(status, remaining, total):
            left.append(remaining)
            if len(left) > TOO_MANY:
                raise Restarting()
            write()

        try:
            src.backup(dst, pages=500, progress=progress)
            same = dst.execute("SELECT count(*) FROM t").fetchone() == src.execute("SELECT count(*) FROM t").fetchone() \
                and dst.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            print("%-52s %3d steps, pages left %s, rows changed %d, copy equals source: %s"
                  % (kind, len(left), left[:4], src.total_changes - changes, same))
        except Restarting:
            print("%-52s restarted at every step (stopped after %d), pages left %s" % (kind, TOO_MANY, left[:4]))
        dst.close()


if __name__ == "__main__":
    main()
