"""Access control against MLflow's own: the same raw requests to a real `mlflow server --app-name basic-auth` (3.17,
from the venv, which needs mlflow[auth]) and to `tally server --auth basic` — users, grants, the levels' effects,
401s and 403s, filtered searches — and the same statuses, error codes and JSON shapes back. Where MLflow answers
plain text (401, 403, some 400s) Tally answers MLflow's error JSON with the same status: statuses are compared,
and Tally's codes checked."""
import base64

import pytest
import requests

from conftest import MlflowServer, Server

ADMIN_PASSWORD = "admin-password-1"


@pytest.fixture(scope="module")
def mlflow_url():
    m = MlflowServer("--app-name", "basic-auth", env={"MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD, "MLFLOW_FLASK_SERVER_SECRET_KEY": "tally-tests"},
                     auth_cache=False)  # it sends bearer and malformed credentials, which MLflow's cache answers with a 500
    yield m.url
    m.stop()


@pytest.fixture(scope="module")
def tally_url():
    s = Server("--auth", "basic", env={"MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD})
    yield s.url
    s.stop()


def auth(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


ADMIN = auth("admin", ADMIN_PASSWORD)
ALICE = auth("alice", "alice-password")
BOB = auth("bob", "bob-password-1")


def shape(v):
    if isinstance(v, dict):
        return {k: shape(x) for k, x in sorted(v.items())}
    if isinstance(v, list):
        return [shape(x) for x in v[:1]]
    return type(v).__name__


def session(url):
    """Runs the scenario against one server: [(step, status, JSON body or None)]."""
    out = []
    ids = {}

    def call(step, method, path, who, **kw):
        r = requests.request(method, url + path, headers=who, **kw)
        try:
            body = r.json()
        except ValueError:
            body = None
        out.append((step, r.status_code, body))
        return body or {}

    api, v3 = "/api/2.0/mlflow", "/api/3.0/mlflow"
    call("create alice", "POST", api + "/users/create", ADMIN, json={"username": "alice", "password": "alice-password"})
    call("create bob", "POST", api + "/users/create", ADMIN, json={"username": "bob", "password": "bob-password-1"})
    call("create again", "POST", api + "/users/create", ADMIN, json={"username": "alice", "password": "alice-password"})
    call("short password", "POST", api + "/users/create", ADMIN, json={"username": "carol", "password": "short"})
    call("get alice", "GET", api + "/users/get?username=alice", ADMIN)
    call("get nobody", "GET", api + "/users/get?username=nobody", ADMIN)
    call("alice gets bob", "GET", api + "/users/get?username=bob", ALICE)
    call("alice creates a user", "POST", api + "/users/create", ALICE, json={"username": "eve", "password": "eve-password-1"})
    call("current", "GET", api + "/users/current", ALICE)
    call("anonymous", "GET", api + "/experiments/search?max_results=10", {})
    call("wrong password", "GET", api + "/experiments/search?max_results=10", auth("alice", "nope-nope-nope"))
    call("bearer junk", "GET", api + "/experiments/search?max_results=10", {"Authorization": "Bearer junk"})
    ids["admin"] = call("admin experiment", "POST", api + "/experiments/create", ADMIN, json={"name": "adm"})["experiment_id"]
    ids["alice"] = call("alice experiment", "POST", api + "/experiments/create", ALICE, json={"name": "ali"})["experiment_id"]
    call("alice reads admin's", "GET", api + f"/experiments/get?experiment_id={ids['admin']}", ALICE)
    call("alice tags admin's", "POST", api + "/experiments/set-experiment-tag", ALICE, json={"experiment_id": ids["admin"], "key": "k", "value": "v"})
    call("alice runs in admin's", "POST", api + "/runs/create", ALICE, json={"experiment_id": ids["admin"]})
    grant = lambda step, who, user, exp, level: call(step, "POST", v3 + "/users/permissions/grant", who,
                                                     json={"username": user, "resource_type": "experiment", "resource_id": exp, "permission": level})
    grant("alice grants bob on hers", ALICE, "bob", ids["alice"], "EDIT")
    grant("alice grants bob on admin's", ALICE, "bob", ids["admin"], "EDIT")
    grant("grant over a grant", ALICE, "bob", ids["alice"], "READ")
    grant("bad permission", ADMIN, "bob", ids["alice"], "SUPER")
    grant("no-permissions grant", ADMIN, "bob", ids["admin"], "NO_PERMISSIONS")
    grant("unknown user", ADMIN, "nobody", ids["admin"], "READ")
    call("bad type", "POST", v3 + "/users/permissions/grant", ADMIN,
         json={"username": "bob", "resource_type": "planet", "resource_id": "1", "permission": "READ"})
    call("missing field", "POST", v3 + "/users/permissions/grant", ADMIN, json={"username": "bob", "resource_type": "experiment", "permission": "READ"})
    get = lambda step, who, user, exp: call(step, "GET", v3 + "/users/permissions/get", who,
                                            params={"username": user, "resource_type": "experiment", "resource_id": exp})
    get("bob's level", BOB, "bob", ids["alice"])
    get("bob's default", BOB, "bob", ids["admin"])
    get("alice reads bob's", ALICE, "bob", ids["alice"])
    run = call("bob runs in alice's", "POST", api + "/runs/create", BOB, json={"experiment_id": ids["alice"]})
    ids["run"] = run.get("run", {}).get("info", {}).get("run_id", "")
    call("bob logs", "POST", api + "/runs/log-parameter", BOB, json={"run_id": ids["run"], "key": "p", "value": "1"})
    call("bob deletes alice's", "POST", api + "/experiments/delete", BOB, json={"experiment_id": ids["alice"]})
    call("alice lists bob's grants", "GET", v3 + "/users/permissions/list?username=bob", ALICE)
    call("bob lists his grants", "GET", v3 + "/users/permissions/list?username=bob", BOB)
    grant("deny alice admin's", ADMIN, "alice", ids["admin"], "DENY")
    call("alice denied get", "GET", api + f"/experiments/get?experiment_id={ids['admin']}", ALICE)
    names = call("alice searches", "POST", api + "/experiments/search", ALICE, json={"max_results": 100})
    out.append(("alice sees", 200, sorted(e["name"] for e in names.get("experiments", []))))
    runs = call("alice searches denied runs", "POST", api + "/runs/search", ALICE, json={"experiment_ids": [ids["admin"]]})
    call("revoke", "POST", v3 + "/users/permissions/revoke", ALICE, json={"username": "bob", "resource_type": "experiment", "resource_id": ids["alice"]})
    call("revoke again", "POST", v3 + "/users/permissions/revoke", ALICE, json={"username": "bob", "resource_type": "experiment", "resource_id": ids["alice"]})
    call("own password without current", "PATCH", api + "/users/update-password", ALICE, json={"username": "alice", "password": "alice-password-2"})
    call("own password wrong current", "PATCH", api + "/users/update-password", ALICE,
         json={"username": "alice", "password": "alice-password-2", "current_password": "nope"})
    call("own password same", "PATCH", api + "/users/update-password", ALICE,
         json={"username": "alice", "password": "alice-password", "current_password": "alice-password"})
    call("other's password", "PATCH", api + "/users/update-password", ALICE, json={"username": "bob", "password": "bob-password-2"})
    call("admin flag by alice", "PATCH", api + "/users/update-admin", ALICE, json={"username": "alice", "is_admin": True})
    call("admin deletes self", "DELETE", api + "/users/delete", ADMIN, json={"username": "admin"})
    call("delete bob", "DELETE", api + "/users/delete", ADMIN, json={"username": "bob"})
    call("bob gone", "GET", api + "/experiments/search?max_results=10", BOB)
    call("list users", "GET", api + "/users/list", ALICE)
    # DENY on every experiment ('*') also vetoes creating one (MLflow's create veto); models are another type.
    grant("deny alice every experiment", ADMIN, "alice", "*", "DENY")
    call("alice creates while denied", "POST", api + "/experiments/create", ALICE, json={"name": "vetoed"})
    call("alice creates a model", "POST", api + "/registered-models/create", ALICE, json={"name": "still-allowed"})
    return out


def test_same_answers_as_mlflows_auth_app(mlflow_url, tally_url):
    theirs, ours = session(mlflow_url), session(tally_url)
    assert [s for s, _, _ in theirs] == [s for s, _, _ in ours]
    problems = []
    for (step, s1, b1), (_, s2, b2) in zip(theirs, ours):
        if step == "alice sees":
            if b1 != b2:
                problems.append(f"{step}: mlflow {b1}, tally {b2}")
            continue
        if s1 != s2:
            problems.append(f"{step}: mlflow {s1} {b1}, tally {s2} {b2}")
            continue
        if s2 == 401 or s2 == 403:
            want = "UNAUTHENTICATED" if s2 == 401 else "PERMISSION_DENIED"
            if (b2 or {}).get("error_code") != want:
                problems.append(f"{step}: tally's body {b2}")
        elif isinstance(b1, dict) and "error_code" in b1:
            if (b2 or {}).get("error_code") != b1["error_code"]:
                problems.append(f"{step}: mlflow {b1['error_code']}, tally {b2}")
        elif isinstance(b1, dict) and s1 == 200 and step not in ("list users",):
            if shape(b1) != shape(b2):
                problems.append(f"{step}: mlflow {shape(b1)}, tally {shape(b2)}")
    assert not problems, "\n".join(problems)
