"""Search filters and `order_by` of runs, experiments, registered models, model versions and logged models against a
real `mlflow server` (3.17, SQLite, from the venv): the same entities in both, then each query sent to both, and the
same answer back — the same items in the same order for a 200, the same status and error code otherwise. The cases are MLflow's grammar at its edges, where
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

REGISTRY_MODELS = [("alpha", {"team": "a"}), ("beta", {"team": "b", "note": "x'y"}), ("gamma-1", {}), ("it's", {"team": "c"}), ("Alpha", {"team": "a"})]

REGISTERED_MODEL_QUERIES = [(f, None) for f in [
    "name = 'alpha'", "name = 'Alpha'", "name LIKE 'a%'", "name ILIKE 'a%'", "name != 'alpha'", "name = \"it's\"", "name = 'it''s'",
    "tags.team = 'a'", "tag.team = 'a'", "tags.`team` = 'a'", "tags.\"team\" = 'a'", "tags.team != 'a'", "tags.team LIKE '%'", "tags.note = 'x'y'",
    "name = 'alpha' AND", "AND name = 'alpha'", "AND", "  ", "name = 'alpha' name = 'beta'", "name = 'alpha' OR name = 'beta'",
    "name IN ('alpha', 'beta')", "name > 'a'", "attribute.name = 'alpha'", "`name` = 'alpha'", "name = alpha", "tags.team IN ('a')", "run_id = 'x'",
    "name='alpha'", "name = 'alpha';", "`attribute`.name = 'alpha'", "name ILIKE '%A%'", "tags.team ILIKE 'A'", "name LIKE 'gamma_1'"]] + [(None, o) for o in [
    ["name"], ["name DESC"], ["name ASC"], ["timestamp"], ["timestamp DESC"], ["last_updated_timestamp"], ["last_updated_timestamp DESC", "name"],
    ["creation_timestamp"], ["`name`"], ["name desc"], ["name  DESC"], [" name"], ["name DESC ASC"], ["tags.team"], ["`name ` DESC"]]]

MODEL_VERSION_QUERIES = [(f, None) for f in [
    "name = 'alpha'", "name LIKE 'a%'", "version_number = 1", "version_number > 1", "version_number = '1'", "version_number IN (1, 2)",
    "run_id = 'x'", "source_path = 'x'", "source_path LIKE 'models:/%'", "tags.v = '1'", "tag.v = '1'", "tags.`v` = '1'",
    "name = 'alpha' AND version_number = 2", "name = 'alpha' AND", "AND", "  ", "name = 'alpha' version_number = 2",
    "name = 'alpha' OR version_number = 2", "version_number >= 1.5", "version_number = 1e0", "name IN ('alpha', 'beta')", "name != 'alpha'",
    "current_stage = 'None'", "name ILIKE 'A%'", "version_number = -1", "`version_number` = 1", "attribute.version_number = 1", "run_id IN ('x')",
    "name = \"alpha\"", "version_number != 1", "version_number LIKE '1'"]] + [(None, o) for o in [
    ["name"], ["name DESC"], ["version_number"], ["version_number DESC"], ["creation_timestamp"], ["last_updated_timestamp DESC"],
    ["name", "version_number DESC"], ["timestamp"], ["`name`"], ["name desc"], [" name"], ["run_id"], ["version_number ASC", "name DESC"],
    ["`version_number ` DESC"], ["attribute.name"], ["tags.v"]]]

LOGGED_MODEL_QUERIES = [(f, None) for f in [
    "name = 'lm1'", "name LIKE 'lm%'", "attributes.name = 'lm1'", "params.p = '1'", "tags.t = 'alpha'", "metrics.acc > 0.1", "metrics.acc >= 0.1",
    "name = 'lm1' AND", "AND", "  ", "name = 'lm1' name = 'lm2'", "name = 'lm1' OR name = 'lm2'", "creation_timestamp > 0", "model_id = 'x'",
    "source_run_id != 'x'", "params.`p` = '1'", "tags.`t` = 'beta'", "metrics.`acc` < 0.3", "name IN ('lm1')", "name ILIKE 'LM1'",
    "metric.acc > 0", "param.p = '1'", "tag.t = 'x'", "params.p > '1'", "`name` = 'lm1'", "model_type = 'x'"]] + [(None, o) for o in [
    [{"field_name": "name"}], [{"field_name": "name", "ascending": False}], [{"field_name": "metrics.acc", "ascending": False}],
    [{"field_name": "creation_timestamp"}], [{"field_name": "params.p"}], [{"field_name": "bogus"}]]]

# Where MLflow's server fails with a 500 (an exception its handlers do not turn into a 400), Tally answers a 400:
# duplicate order_by fields, IS NULL in the registry's grammars, a string compared with a logged model's metric.
MLFLOW_500_REGISTRY = [("/registered-models/search", "tags.team IS NULL", None), ("/registered-models/search", None, ["name", "name DESC"]),
                       ("/model-versions/search", "tags.v IS NULL", None)]
# Deliberately not as MLflow: its logged-model parser strips quotes off any value, so `name = lm1` (unquoted) matches,
# and compares `status` as text with its integer column, so `status = 'READY'` matches nothing on SQLite (and fails
# on PostgreSQL). Tally asks for a quoted value and a number (the status's code), with a 400 that says so.
NOT_AS_MLFLOW_LOGGED_MODELS = ["name = lm1", "status = 'READY'"]

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


def populate_registry(url):
    """Registered models with tags, two versions each, and a logged model per registered model with a param, a tag and
    a metric; the experiment's id."""
    api = url + "/api/2.0/mlflow"
    exp = requests.post(api + "/experiments/create", json={"name": "registry"}).json()["experiment_id"]
    run = requests.post(api + "/runs/create", json={"experiment_id": exp}).json()["run"]["info"]["run_id"]
    for i, (name, tags) in enumerate(REGISTRY_MODELS):
        requests.post(api + "/registered-models/create", json={"name": name, "tags": [{"key": k, "value": v} for k, v in tags.items()]}).raise_for_status()
        model = requests.post(api + "/logged-models", json={"experiment_id": exp, "name": f"lm{i}", "source_run_id": run, "params": [{"key": "p", "value": str(i)}],
                                                           "tags": [{"key": "t", "value": name}]}).json()["model"]["info"]["model_id"]
        requests.post(api + "/runs/log-metric", json={"run_id": run, "key": "acc", "value": i / 10, "timestamp": 1, "step": 0, "model_id": model}).raise_for_status()
        for v in range(2):
            requests.post(api + "/model-versions/create", json={"name": name, "source": f"models:/{model}", "run_id": run, "model_id": model,
                                                                "tags": [{"key": "v", "value": str(v)}]}).raise_for_status()
    return exp


def answer(r, names):
    """A 200's names in order, or the status, error code and message of a refusal."""
    try:
        body = r.json()
    except ValueError:
        return (r.status_code, "not JSON", r.text[:200])
    if r.status_code != 200:
        return (r.status_code, body.get("error_code"), body.get("message", "")[:200])
    return (200, names(body))


def search_runs(url, exp, filt, order):
    body = {"experiment_ids": [exp], "max_results": 100, **({"filter": filt} if filt is not None else {}), **({"order_by": order} if order is not None else {})}
    return answer(requests.post(url + "/api/2.0/mlflow/runs/search", json=body), lambda b: [x["info"]["run_name"] for x in b.get("runs", [])])


def search_experiments(url, filt, order):
    body = {"max_results": 100, **({"filter": filt} if filt is not None else {}), **({"order_by": order} if order is not None else {})}
    return answer(requests.post(url + "/api/2.0/mlflow/experiments/search", json=body), lambda b: [x["name"] for x in b.get("experiments", [])])


def search_registry(url, path, filt, order):
    params = {"max_results": 100, **({"filter": filt} if filt is not None else {}), **({"order_by": order} if order is not None else {})}
    key = "registered_models" if path.startswith("/registered") else "model_versions"
    return answer(requests.get(url + "/api/2.0/mlflow" + path, params=params), lambda b: [(x["name"], x.get("version")) for x in b.get(key, [])])


def search_logged_models(url, exp, filt, order):
    body = {"experiment_ids": [exp], **({"filter": filt} if filt is not None else {}), **({"order_by": order} if order is not None else {})}
    return answer(requests.post(url + "/api/2.0/mlflow/logged-models/search", json=body), lambda b: [x["info"]["name"] for x in b.get("models", [])])


def same(oracle, ours):
    """Equal answers: the runs in order for a 200, the status and code for a refusal."""
    return oracle == ours if oracle[0] == 200 else oracle[:2] == ours[:2]


@pytest.fixture(scope="module")
def both():
    m, t = MlflowServer(), Server()
    try:
        yield (m.url, populate(m.url), populate_registry(m.url)), (t.url, populate(t.url), populate_registry(t.url))
    finally:
        m.stop()
        t.stop()


def test_run_filters_match_mlflow(both):
    (m, me, _), (t, te, _) = both
    diffs = [(f, search_runs(m, me, f, None), search_runs(t, te, f, None)) for f in FILTERS]
    diffs = [d for d in diffs if not same(d[1], d[2])]
    assert not diffs, "\n".join(f"{f!r}\n  mlflow: {a}\n  tally:  {b}" for f, a, b in diffs)


def test_run_orderings_match_mlflow(both):
    (m, me, _), (t, te, _) = both
    diffs = [(o, search_runs(m, me, None, o), search_runs(t, te, None, o)) for o in ORDERS]
    diffs = [d for d in diffs if not same(d[1], d[2])]
    assert not diffs, "\n".join(f"{o!r}\n  mlflow: {a}\n  tally:  {b}" for o, a, b in diffs)
    for o in MLFLOW_500:
        assert search_runs(m, me, None, o)[0] == 500
        assert search_runs(t, te, None, o)[:2] == (400, "INVALID_PARAMETER_VALUE")


def test_experiment_queries_match_mlflow(both):
    (m, _, _), (t, _, _) = both
    diffs = [(q, search_experiments(m, *q), search_experiments(t, *q)) for q in EXPERIMENT_QUERIES]
    diffs = [d for d in diffs if not same(d[1], d[2])]
    assert not diffs, "\n".join(f"{q!r}\n  mlflow: {a}\n  tally:  {b}" for q, a, b in diffs)


@pytest.mark.parametrize("path,queries", [("/registered-models/search", REGISTERED_MODEL_QUERIES), ("/model-versions/search", MODEL_VERSION_QUERIES)])
def test_registry_queries_match_mlflow(both, path, queries):
    (m, _, _), (t, _, _) = both
    diffs = [(q, search_registry(m, path, *q), search_registry(t, path, *q)) for q in queries]
    diffs = [d for d in diffs if not same(d[1], d[2])]
    assert not diffs, "\n".join(f"{q!r}\n  mlflow: {a}\n  tally:  {b}" for q, a, b in diffs)
    for p, f, o in MLFLOW_500_REGISTRY:
        if p == path:
            assert search_registry(m, p, f, o)[0] == 500
            assert search_registry(t, p, f, o)[:2] == (400, "INVALID_PARAMETER_VALUE")


def test_logged_model_queries_match_mlflow(both):
    (m, _, me), (t, _, te) = both
    diffs = [(q, search_logged_models(m, me, *q), search_logged_models(t, te, *q)) for q in LOGGED_MODEL_QUERIES]
    diffs = [d for d in diffs if not same(d[1], d[2])]
    assert not diffs, "\n".join(f"{q!r}\n  mlflow: {a}\n  tally:  {b}" for q, a, b in diffs)
    assert search_logged_models(m, me, "metrics.acc = 'x'", None)[0] == 500
    assert search_logged_models(t, te, "metrics.acc = 'x'", None)[:2] == (400, "INVALID_PARAMETER_VALUE")
    for f in NOT_AS_MLFLOW_LOGGED_MODELS:
        assert search_logged_models(m, me, f, None)[0] == 200
        assert search_logged_models(t, te, f, None)[:2] == (400, "INVALID_PARAMETER_VALUE")
