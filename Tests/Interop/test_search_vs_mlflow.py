"""`runs/search` and `experiments/search` filters and `order_by` against a real `mlflow server` (3.17, SQLite, from the
venv): the same runs in both, then each filter and ordering sent to both, and the same answer back — the same runs in
the same order for a 200, the same status and error code otherwise. The cases are MLflow's grammar at its edges, where
its parser (sqlparse, then a shell-style split of `order_by`) decides: bare `AND`s, clauses side by side, backquoted
entities, quoted keys, whitespace, directions, punctuation."""
import math

import pytest
import requests

from conftest import MlflowServer, Server

# (run name, params, tags, metrics): NaN, infinity and missing values, quotes and backslashes in values.
RUNS = [
    ("alpha", {"lr": "0.01", "opt": "adam"}, {"team": "a", "note": "x'y"}, {"loss": 0.5, "acc": 0.9}),
    ("beta", {"lr": "0.1", "opt": "sgd"}, {"team": "b", "note": "a\\b"}, {"loss": 0.25, "acc": float("nan")}),
    ("gamma", {"lr": "0.01"}, {"team": "a"}, {"loss": 1.5}),
    ("delta", {"opt": "adam"}, {"note": "%x_"}, {"acc": 0.5, "loss": float("inf")}),
    ("it's", {"lr": "1"}, {"team": "c"}, {"loss": -1.0}),
    ("eps ilon", {}, {}, {}),
]

FILTERS = [
    # AND wherever it stands; clauses side by side; what is not a clause.
    "metrics.loss > 0 AND", "AND metrics.loss > 0", "metrics.loss > 0 AND AND", "AND", "and", "AND AND",
    "metrics.loss > 0 and params.lr = '0.01' AND", "metrics.loss > 0 metrics.acc > 0", "metrics.loss > 0 AND AND metrics.acc > 0",
    "metrics.loss > 0 OR metrics.acc > 0", "metrics.loss > 0 NOT metrics.acc > 0", "NOT metrics.loss > 0",
    "metrics.loss > 0 AND (metrics.acc > 0)", ";", "metrics.loss > 0;",
    # Whitespace.
    "  ", "\t", "   metrics.loss > 0   ", "\nmetrics.loss > 0\n", "metrics.loss>0",
    # Backquoted entities, quoted keys.
    "`metrics`.loss > 0", "`metrics`.`loss` > 0", "`metrics`.\"loss\" > 0", "\"metrics\".loss > 0", "metrics.'loss' > 0",
    "`metrics.loss` > 0", "`metric`.loss > 0", "`params`.lr = '0.01'", "`attributes`.run_name = 'beta'", "`tags`.team = 'a'",
    "metrics.`loss` > 0", "metrics.\"loss\" > 0", "metric.loss > 0", "attribute.run_name = 'beta'",
    # Quoted values as written (no escapes), LIKE's wildcards.
    "tags.note = 'x'y'", "tags.note = \"x'y\"", "tags.note = 'a\\b'", "tags.note LIKE '%\\%'", "tags.note LIKE '\\%%'",
    "attributes.run_name = 'it''s'", "run_name = \"it's\"", "run_name LIKE 'eps%'", "run_name ILIKE 'EPS%'",
    # Numbers, infinities, NaN, missing values, lists.
    "metrics.loss >= 1e308", "metrics.loss = 'inf'", "metrics.loss > -inf", "metrics.acc > 0", "metrics.acc != 0.5",
    "metrics.loss < 0.5 AND metrics.loss > 0.1", "params.lr IN ('0.01', '1')", "params.lr NOT IN ('0.01')", "tags.team != 'a'",
    "params.lr > '0'", "tags.team IS NULL", "params.lr = 0.01", "metrics.loss = '0.5'", "metrics.loss BETWEEN 0 AND 1",
    # Attributes.
    "attributes.status = 'RUNNING'", "status = 'RUNNING'", "start_time > 1002", "created > 1002", "Created > 1002",
    "attributes.end_time > 0", "user_id = 'x'", "artifact_uri LIKE '%'", "run_id = 'x'", "attributes.run_id IN ('a','b')",
    "datasets.name = 'x'",
]

ORDERS = [
    # Whitespace inside backquotes, which only a direction's split removes.
    ["`run_name `"], ["` run_name`"], ["`start_time ` DESC"], ["`run_name ` DESC"], ["`run_name `ASC"],
    # Backquotes and quotes around keys and entities.
    ["params.`p``q`"], ["params.`p``q` DESC"], ["`p``q`"], ["metrics.'loss'"], ["metrics.'loss' DESC"], ["metrics.\"loss\" DESC"],
    ["metrics.\"loss\""], ["`metrics`.loss"], ["`metrics`.loss DESC"], ["metrics.`lo ss` DESC"], ["tags.'team'"], ["tags.'team' DESC"],
    ["`metrics.loss`"], ["`metrics.loss` DESC"], ["metrics.`a'b`"], ["metrics.\"a\"\"b\""], ["metrics.`a`b"], ["metrics.a`b`"],
    ["metrics.a'b'"], ["'x'"], ["`x`.y"], ["\"metrics\".loss"], ["metrics.`loss`"],
    # Directions and whitespace.
    ["metrics.loss"], ["metrics.loss DESC"], ["metrics.loss ASC"], ["metrics.loss asc"], ["start_time desc"], ["start_time Desc"],
    ["start_time  DESC "], [" start_time"], ["metrics.loss\tDESC"], ["metrics.loss  DESC"], ["metrics.x DESC ASC"],
    ["metrics.loss NULLS"], ["metrics.loss DESC NULLS FIRST"], ["metrics.loss AS b"], ["metrics.loss b"], ["metrics.lo ss"],
    # Punctuation and odd keys.
    ["metrics.a,metrics.b"], ["metrics."], ["metrics. DESC"], ["metrics.val-loss"], ["metrics.a/b"], ["metrics.a[b]"], ["metrics.1a"],
    ["metrics.ä"], ["-metrics.loss"], ["metrics.loss."], ["metrics"], ["1"], ["metrics.loss <> 1"], [""], [" "],
    # Entities and attributes.
    ["metrics.acc"], ["metrics.acc DESC"], ["params.lr"], ["params.lr DESC", "run_name"], ["tags.team"], ["metric.loss"], ["param.lr"],
    ["tag.team"], ["attr.status"], ["run.start_time"], ["attribute.start_time DESC"], ["run_name"], ["`Run name`"], ["Run name"],
    ["attributes.`run_name`"], ["timestamp"], ["start_time"], ["created"], ["Created DESC"], ["end_time"], ["status"], ["user_id"],
    ["experiment_id"], ["datasets.name"], ["dataset.digest"], ["datasets.foo"], ["metrics.loss DESC", "metrics.acc"],
]

EXPERIMENT_QUERIES = [
    ("attributes.name = 'diff'", None), ("attribute.name = 'diff'", None), ("`name` = 'diff'", None), ("tags.`a` = 'x'", None),
    ("tag.a = 'x'", None), ("  ", None), ("AND", None), ("name = 'diff' AND", None), ("AND name = 'diff'", None),
    ("name = 'diff' name = 'diff'", None), ("`attribute`.name = 'diff'", None), ("`tags`.a = 'x'", None),
    (None, ["name"]), (None, ["tags.a"]), (None, ["tag.a"]), (None, ["attribute.name"]), (None, ["attributes.name"]), (None, ["`name`"]),
    (None, ["`name ` DESC"]), (None, ["name desc"]), (None, ["experiment_id"]), (None, ["last_update_time DESC"]),
    (None, ["`attribute`.name"]), (None, ["`name `"]), (None, [" name"]), (None, ["name DESC ASC"]), (None, ["params.x"]),
]

# Duplicate fields: MLflow's server answers 500 (its check raises a plain ValueError); Tally answers 400 with its message.
MLFLOW_500 = [["params.lr DESC", "params.lr ASC"], ["metrics.loss", "metrics.`loss`"], ["created", "start_time"]]


def populate(url):
    api = url + "/api/2.0/mlflow"
    exp = requests.post(api + "/experiments/create", json={"name": "diff"}).json()["experiment_id"]
    for i, (name, params, tags, metrics) in enumerate(RUNS):
        run = requests.post(api + "/runs/create", json={"experiment_id": exp, "run_name": name, "start_time": 1000 + i}).json()["run"]["info"]["run_id"]
        value = lambda v: v if math.isfinite(v) else ("NaN" if math.isnan(v) else "Infinity")
        requests.post(api + "/runs/log-batch", json={
            "run_id": run, "params": [{"key": k, "value": v} for k, v in params.items()],
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
            "metrics": [{"key": k, "value": value(v), "timestamp": 1, "step": 0} for k, v in metrics.items()]}).raise_for_status()
    return exp


def answer(r, names):
    """A 200's names in order, or the status, error code and message of a refusal."""
    body = r.json()
    if r.status_code != 200:
        return (r.status_code, body.get("error_code"), body.get("message", "")[:200])
    return (200, names(body))


def search_runs(url, exp, filt, order):
    body = {"experiment_ids": [exp], "max_results": 100, **({"filter": filt} if filt is not None else {}), **({"order_by": order} if order is not None else {})}
    return answer(requests.post(url + "/api/2.0/mlflow/runs/search", json=body), lambda b: [x["info"]["run_name"] for x in b.get("runs", [])])


def search_experiments(url, filt, order):
    body = {"max_results": 100, **({"filter": filt} if filt is not None else {}), **({"order_by": order} if order is not None else {})}
    return answer(requests.post(url + "/api/2.0/mlflow/experiments/search", json=body), lambda b: [x["name"] for x in b.get("experiments", [])])


def same(oracle, ours):
    """Equal answers: the runs in order for a 200, the status and code for a refusal."""
    return oracle == ours if oracle[0] == 200 else oracle[:2] == ours[:2]


@pytest.fixture(scope="module")
def both():
    m, t = MlflowServer(), Server()
    try:
        yield (m.url, populate(m.url)), (t.url, populate(t.url))
    finally:
        m.stop()
        t.stop()


def test_run_filters_match_mlflow(both):
    (m, me), (t, te) = both
    diffs = [(f, search_runs(m, me, f, None), search_runs(t, te, f, None)) for f in FILTERS]
    diffs = [d for d in diffs if not same(d[1], d[2])]
    assert not diffs, "\n".join(f"{f!r}\n  mlflow: {a}\n  tally:  {b}" for f, a, b in diffs)


def test_run_orderings_match_mlflow(both):
    (m, me), (t, te) = both
    diffs = [(o, search_runs(m, me, None, o), search_runs(t, te, None, o)) for o in ORDERS]
    diffs = [d for d in diffs if not same(d[1], d[2])]
    assert not diffs, "\n".join(f"{o!r}\n  mlflow: {a}\n  tally:  {b}" for o, a, b in diffs)
    for o in MLFLOW_500:
        assert search_runs(m, me, None, o)[0] == 500
        assert search_runs(t, te, None, o)[:2] == (400, "INVALID_PARAMETER_VALUE")


def test_experiment_queries_match_mlflow(both):
    (m, _), (t, _) = both
    diffs = [(q, search_experiments(m, *q), search_experiments(t, *q)) for q in EXPERIMENT_QUERIES]
    diffs = [d for d in diffs if not same(d[1], d[2])]
    assert not diffs, "\n".join(f"{q!r}\n  mlflow: {a}\n  tally:  {b}" for q, a, b in diffs)
