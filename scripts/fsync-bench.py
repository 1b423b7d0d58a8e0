#!/usr/bin/env python3
"""The cost of an fdatasync after appending to a file's end against after overwriting zeros written ahead
(docs/benchmarks.md, "Zeros written ahead"): 3,000 × (write 300 bytes + fdatasync), twice each, alternating.

    python3 scripts/fsync-bench.py [--dir DIR]     # DIR on the file system to measure (default: the current directory)
"""
import argparse
import os
import statistics
import time


def bench(path, ahead, n=3000, record=300):
    if os.path.exists(path):
        os.remove(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        if ahead:
            os.write(fd, b"\0" * (64 << 20))
            os.fsync(fd)
            os.lseek(fd, 0, os.SEEK_SET)
        buf = b"x" * record
        took = []
        start = time.perf_counter()
        for _ in range(n):
            os.write(fd, buf)
            t = time.perf_counter()
            os.fdatasync(fd)
            took.append(time.perf_counter() - t)
        return statistics.median(took) * 1e6, n / (time.perf_counter() - start)
    finally:
        os.close(fd)
        os.remove(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=".")
    a = ap.parse_args()
    path = os.path.join(a.dir, "tally-fsync-bench.bin")
    for _ in range(2):
        for ahead in (False, True):
            median, rate = bench(path, ahead)
            print(f"{'overwriting zeros written ahead' if ahead else 'appending'}: fdatasync median {median:.0f} µs, {rate:,.0f} write+sync/s")


if __name__ == "__main__":
    main()
