#!/usr/bin/env python3
"""Time for the compare view to render 20 runs × 1 M points in Debian's headless Chromium, against a `tally server`
it starts and seeds through the Python client. Prints JSON (median of 5 page loads).

Usage: .venv-interop/bin/python scripts/bench-ui.py [--tally .build/release/tally] [--runs 20] [--points 1000000]
"""
import argparse, json, math, os, shutil, tempfile, time

import tally_client

from benchutil import start_tally, stop


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tally", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "tally"))
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--points", type=int, default=1_000_000)
    a = ap.parse_args()
    from array import array
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    work = tempfile.mkdtemp(prefix="tally-ui-bench-")
    proc, url = start_tally(a.tally, work)
    driver = None
    try:
        steps = array("q", range(a.points))
        stamps = array("q", (1_700_000_000_000 + s for s in range(a.points)))
        ids = []
        t = time.perf_counter()
        for r in range(a.runs):
            values = array("d", (2 * math.exp(-s / 200_000) + 0.05 * math.sin(s / 97 + r) + 0.01 * r for s in range(a.points)))
            with tally_client.Run(experiment="ui-bench", tracking_uri=url, run_name="run-%d" % r, flush_points=a.points) as run:
                run.log_series("loss", steps, values, stamps)
            ids.append(run.run_id)
        seed_s = time.perf_counter() - t
        opts = webdriver.ChromeOptions()
        opts.binary_location = shutil.which("chromium")
        for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"]:
            opts.add_argument(arg)
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
        page = url + "/#/compare?runs=%s&metrics=loss" % ",".join(ids)
        times, inner = [], []
        for _ in range(6):
            driver.get("about:blank")
            t = time.perf_counter()
            driver.get(page)
            while not driver.execute_script("return document.querySelector('.chart')?.dataset.lines === '%d'" % a.runs):
                time.sleep(0.005)
            times.append(time.perf_counter() - t)
            inner.append(float(driver.execute_script("return Number(document.querySelector('section').dataset.renderMs)")))
        times, inner = times[1:], inner[1:]  # the first load warms the browser's cache of the scripts
        print(json.dumps({"runs": a.runs, "points_per_run": a.points, "seed_s": round(seed_s, 1),
                          "page_load_to_drawn_ms_median": round(sorted(times)[len(times) // 2] * 1000),
                          "compare_fetch_and_draw_ms_median": round(sorted(inner)[len(inner) // 2]),
                          "page_load_ms_all": [round(x * 1000) for x in times]}, indent=2))
    finally:
        if driver:
            driver.quit()
        stop(proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
