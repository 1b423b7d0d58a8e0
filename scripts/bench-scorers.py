#!/usr/bin/env python3
"""Registered scorers at a team's scale: a server (a `tally server` binary, or a real `mlflow server` from the venv)
given E experiments of S scorers of V versions each, registered one request at a time as `Scorer.register` sends them;
then the reads the client makes — `list_scorers` (a listing and its online-scoring settings), `get_scorer`,
`list_scorer_versions` — and a listing across every experiment (the scorer picker). Prints each step's time and the
server's RSS (VmRSS, peak VmHWM) at the end.

    scripts/bench-scorers.py .build/release/tally -                        # SQLite in a temp data directory
    scripts/bench-scorers.py .build/release/tally postgresql://…
    .venv-interop/bin/python scripts/bench-scorers.py mlflow sqlite:////tmp/m.db
"""
import argparse
import json
import random
import tempfile
import time
import urllib.parse

from benchutil import call, median_ms, server_rss, start_server, stop_server

SC = "/api/3.0/mlflow/scorers"


def definition(name, version):
    """A judge as `make_judge(...).register` sends one (about 700 bytes)."""
    return json.dumps({"name": name, "aggregations": ["mean"], "description": None, "is_session_level_scorer": False, "timeout": 0,
                       "mlflow_version": "3.17.2", "serialization_version": 1, "builtin_scorer_class": None, "builtin_scorer_pydantic_data": None,
                       "call_source": None, "call_signature": None, "original_func_name": None,
                       "instructions_judge_pydantic_data": {"instructions": f"Version {version}: is {{{{ outputs }}}} polite, correct and "
                                                           + "grounded in {{ inputs }}? " * 6, "model": "openai:/gpt-4o-mini",
                                                           "feedback_value_type": {"type": "boolean"}},
                       "memory_augmented_judge_data": None, "third_party_scorer_data": None, "ensemble_scorer_data": None})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("server", help="a tally binary, or `mlflow`")
    p.add_argument("backend", help="a PostgreSQL or sqlite:// URI, or - for Tally's SQLite in the data directory")
    p.add_argument("--experiments", type=int, default=50)
    p.add_argument("--scorers", type=int, default=20)
    p.add_argument("--versions", type=int, default=3)
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="bench-scorers-")
    proc, url = start_server(a.server, a.backend, work)
    try:
        exps = [call(url, "POST", "/api/2.0/mlflow/experiments/create", {"name": f"bench-scorers-{i}-{time.time_ns()}"})["experiment_id"]
                for i in range(a.experiments)]
        started = time.time()
        for v in range(1, a.versions + 1):
            for e in exps:
                for s in range(a.scorers):
                    call(url, "POST", SC + "/register", {"experiment_id": e, "name": f"judge-{s}", "serialized_scorer": definition(f"judge-{s}", v)})
        n = a.experiments * a.scorers * a.versions
        took = time.time() - started
        print(f"{n} versions registered ({a.experiments} experiments x {a.scorers} scorers x {a.versions}): {took:.2f} s ({n / took:.0f}/s)")
        rnd = random.Random(1)

        def client_list():
            listed = call(url, "GET", SC + "/list?" + urllib.parse.urlencode({"experiment_id": rnd.choice(exps)}))["scorers"]
            call(url, "GET", SC + "/online-configs?" + urllib.parse.urlencode([("scorer_ids", x["scorer_id"]) for x in listed]))

        def client_get():
            q = urllib.parse.urlencode({"experiment_id": rnd.choice(exps), "name": f"judge-{rnd.randrange(a.scorers)}"})
            sid = call(url, "GET", SC + "/get?" + q)["scorer"]["scorer_id"]
            call(url, "GET", SC + "/online-configs?" + urllib.parse.urlencode({"scorer_ids": sid}))

        def versions():
            q = urllib.parse.urlencode({"experiment_id": rnd.choice(exps), "name": f"judge-{rnd.randrange(a.scorers)}"})
            assert len(call(url, "GET", SC + "/versions?" + q)["scorers"]) == a.versions

        print(f"list_scorers (one experiment's {a.scorers}, with their settings): {median_ms(client_list, 51):.1f} ms (median of 51)")
        print(f"get_scorer (the latest, with its settings): {median_ms(client_get, 101):.1f} ms (median of 101)")
        print(f"a scorer's {a.versions} versions: {median_ms(versions, 101):.1f} ms (median of 101)")
        every = lambda: call(url, "GET", SC + "/list")
        print(f"every experiment's scorers ({a.experiments * a.scorers}): {median_ms(every, 7):.1f} ms (median of 7)")
        now, peak = server_rss(proc)
        print(f"server RSS {now:.1f} MB, peak {peak:.1f} MB")
    finally:
        stop_server(proc, work)


if __name__ == "__main__":
    main()
