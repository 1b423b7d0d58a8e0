#!/usr/bin/env python3
"""Human review at a team's scale: a server (a `tally server` binary, or a real `mlflow server` from the venv) given E
experiments, each with Q questions (label schemas), T traces, one team queue holding every trace and R reviewers' own
queues; each trace reviewed as the UI does it (one `set-status` per item). Then the reads a labeling page makes — an
experiment's questions, its queues, a queue's items (pending ones), the queues holding a trace — timed as medians.
Prints each step's time and the server's RSS (VmRSS, peak VmHWM) at the end.

    scripts/bench-review.py .build/release/tally -                        # SQLite in a temp data directory
    scripts/bench-review.py .build/release/tally postgresql://…
    .venv-interop/bin/python scripts/bench-review.py mlflow sqlite:////tmp/m.db
"""
import argparse
import random
import tempfile
import time
import urllib.parse

from benchutil import call, median_ms, server_rss, start_server, stop_server

V3 = "/api/3.0/mlflow"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("server", help="a tally binary, or `mlflow`")
    p.add_argument("backend", help="a PostgreSQL or sqlite:// URI, or - for Tally's SQLite in the data directory")
    p.add_argument("--experiments", type=int, default=10)
    p.add_argument("--questions", type=int, default=5)
    p.add_argument("--traces", type=int, default=300)
    p.add_argument("--reviewers", type=int, default=5)
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="bench-review-")
    proc, url = start_server(a.server, a.backend, work)
    try:
        exps = [call(url, "POST", "/api/2.0/mlflow/experiments/create", {"name": f"bench-review-{i}-{time.time_ns()}"})["experiment_id"]
                for i in range(a.experiments)]
        traces = {}
        for n, e in enumerate(exps):
            traces[e] = [f"tr-{n:08x}{i:024x}" for i in range(a.traces)]
            for t in traces[e]:
                info = {"trace_id": t, "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": e}},
                        "request_time": "2026-12-05T00:00:00Z", "execution_duration": "0.100s", "state": "OK"}
                call(url, "POST", V3 + "/traces", {"trace": {"trace_info": info}})
        started = time.time()
        queues = {}
        for e in exps:
            ids = [call(url, "POST", V3 + "/label-schemas/create", {"experiment_id": e, "name": f"question {q}?", "type": "FEEDBACK",
                                                                  "input": {"categorical": {"options": ["good", "bad", "unsure"]}}})
                   ["label_schema"]["schema_id"] for q in range(a.questions)]
            queues[e] = call(url, "POST", V3 + "/review-queues/create", {"experiment_id": e, "name": "team", "queue_type": "CUSTOM", "schema_ids": ids,
                                                                        "users": [f"reviewer-{r}" for r in range(a.reviewers)]})["review_queue"]["queue_id"]
            for r in range(a.reviewers):
                call(url, "POST", V3 + "/review-queues/get-or-create-user", {"experiment_id": e, "user": f"reviewer-{r}"})
            for i in range(0, a.traces, 100):
                call(url, "POST", V3 + "/review-queues/items/add", {"queue_id": queues[e], "item_ids": traces[e][i:i + 100]})
        took = time.time() - started
        print(f"set up {a.experiments} experiments x ({a.questions} questions, {1 + a.reviewers} queues, {a.traces} items): {took:.2f} s")
        started = time.time()
        for e in exps:
            for k, t in enumerate(traces[e]):
                if k % 3:  # two of three reviewed
                    call(url, "POST", V3 + "/review-queues/items/set-status",
                         {"queue_id": queues[e], "item_id": t, "status": "COMPLETE", "completed_by": f"reviewer-{k % a.reviewers}"})
        n = sum(1 for e in exps for k in range(a.traces) if k % 3)
        took = time.time() - started
        print(f"{n} items reviewed, one request each: {took:.2f} s ({n / took:.0f}/s)")
        rnd = random.Random(1)
        get = lambda path, **q: call(url, "GET", V3 + path + "?" + urllib.parse.urlencode(q))
        print(f"an experiment's questions: {median_ms(lambda: get('/label-schemas/list', experiment_id=rnd.choice(exps)), 101):.1f} ms (median of 101)")
        print(f"an experiment's queues: {median_ms(lambda: get('/review-queues/list', experiment_id=rnd.choice(exps)), 101):.1f} ms (median of 101)")
        pending = lambda: get("/review-queues/items/list", queue_id=queues[rnd.choice(exps)], status="PENDING")
        print(f"a queue's pending items ({a.traces // 3}): {median_ms(pending, 51):.1f} ms (median of 51)")
        every = lambda: get("/review-queues/items/list", queue_id=queues[rnd.choice(exps)])
        print(f"a queue's items ({a.traces}): {median_ms(every, 51):.1f} ms (median of 51)")
        holding = lambda: get("/review-queues/list", experiment_id=(e := rnd.choice(exps)), item_id=rnd.choice(traces[e]))
        print(f"the queues holding a trace: {median_ms(holding, 101):.1f} ms (median of 101)")
        now, peak = server_rss(proc)
        print(f"server RSS {now:.1f} MB, peak {peak:.1f} MB")
    finally:
        stop_server(proc, work)


if __name__ == "__main__":
    main()
