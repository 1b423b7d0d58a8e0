"""MLflow 3's issues (`/api/3.0/mlflow/issues`): what `mlflow.genai.discover_issues` makes, `mlflow.log_issue` links
traces to, and the UI's issues tab lists.

Through the unmodified client: MLflow's own demo of issue detection (`mlflow.demo`: traces, evaluation runs, issues
made from the failing judgements and linked to their traces, then rejected by a refresh) run against Tally and against a
real `mlflow server` (3.17, SQLite, from the venv), the issues and their references compared (which failing traces the
demo links, and so how many, depends on the order its evaluation threads ran in; on each server an issue's trace count
is the traces its `issue.id` search finds). Then raw requests side by side, the answers compared once ids, clocks and
experiment ids are tokens; and the same requests as users of MLflow's auth app and of Tally's, the same statuses."""
import os
import re
import subprocess
import sys

import pytest

from conftest import (ORACLE_ADMIN_PASSWORD as ADMIN_PASSWORD, RawSession as Session, Server, StartingMlflow, acl_users, compare_steps,
                      once_per_suite, status_problems)

V3 = "/api/3.0/mlflow"
ISSUES = V3 + "/issues"
API = "/api/2.0/mlflow"
ADMIN = ("admin", ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def plain():
    """A real `mlflow server` (SQLite), started when a test first needs it."""
    s = StartingMlflow()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def auth():
    """A real `mlflow server` with its auth app (admin `admin`, `ORACLE_ADMIN_PASSWORD`), started when a test first
    needs it (only the pass that runs the permissions test starts it)."""
    s = StartingMlflow("--app-name", "basic-auth",
                       env={"MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD, "MLFLOW_FLASK_SERVER_SECRET_KEY": "tally-tests"})
    yield s
    s.stop()


# ---------------------------------------------------------------------------------------------------------------------
# 1. MLflow's demo of issue detection

DEMO = r"""
import json, sys, mlflow, requests
from mlflow.demo import generate_all_demos
from mlflow.tracing.client import TracingClient
url = sys.argv[1]
mlflow.set_tracking_uri(url)
generate_all_demos(features=["traces", "evaluation", "issues"])
exp = mlflow.get_experiment_by_name("MLflow Demo").experiment_id

def issues():
    found = requests.post(url + "/api/3.0/mlflow/issues/search", json={"experiment_id": exp, "include_trace_count": True}).json()
    out = []
    for i in found.get("issues", []):
        traces = mlflow.search_traces(locations=[exp], filter_string=f"issue.id = '{i['issue_id']}'", return_type="list")
        refs = [a for t in traces for a in t.info.assessments if a.name == i["issue_id"]]
        out.append({"name": i["name"], "description": i["description"], "status": i["status"], "severity": i.get("severity"),
                    "root_causes": i.get("root_causes"), "categories": i.get("categories"), "created_by": i.get("created_by"),
                    "source_run": mlflow.get_run(i["source_run_id"]).info.run_name if i.get("source_run_id") else None,
                    "trace_count": i["trace_count"], "traces": len(traces),
                    "references": sorted({(a.issue.issue_name, a.source.source_type, a.rationale or "") for a in refs}),
                    "got": TracingClient()._get_issue(i["issue_id"]).name})
    return out

first = issues()
generate_all_demos(refresh=True, features=["issues"])  # the demo's own delete: every issue rejected, then made again
print(json.dumps({"first": first, "refreshed": issues()}))
"""


def demo(url):
    """The demo run against `url` by a client process of its own, and what it then read."""
    import json
    out = subprocess.run([sys.executable, "-c", DEMO, url], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_ENABLE_ASYNC_TRACE_LOGGING": "false"})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@once_per_suite()  # the client's path, whatever the backend (the raw requests below run in both passes)
def test_mlflows_issue_demo_reads_the_same(plain):
    oracle = plain.get()
    tally = Server()
    try:
        theirs, ours = demo(oracle.url), demo(tally.url)
        assert ours["first"], "the demo made no issues"
        assert all(i["trace_count"] == i["traces"] > 0 and i["got"] == i["name"] for i in ours["first"]), ours["first"]
        # The refresh rejected the first issues and made them again: each twice, the new pending.
        assert sorted(i["status"] for i in ours["refreshed"]) == sorted(["rejected"] * len(ours["first"]) + ["pending"] * len(ours["first"]))
        # In the order of the searches, but for the trace counts (within a severity, the most traces first).
        uncounted = lambda issues: sorted(({k: v for k, v in i.items() if k not in ("trace_count", "traces")} for i in issues),
                                          key=lambda i: (-["not_an_issue", "low", "medium", "high"].index(i["severity"] or "low"), i["name"], i["status"]))
        for when in ("first", "refreshed"):
            problems = [f"{when} #{n}: mlflow {a}, tally {b}" for n, (a, b) in enumerate(zip(uncounted(theirs[when]), uncounted(ours[when]))) if a != b]
            assert len(theirs[when]) == len(ours[when]) and not problems, "\n".join(problems)
            severities = [i["severity"] for i in ours[when]]
            assert severities == sorted(severities, key=["not_an_issue", "low", "medium", "high"].index, reverse=True), severities
        assert tally.proc.poll() is None
    finally:
        tally.stop()


# ---------------------------------------------------------------------------------------------------------------------
# 2. The raw API side by side

TR = [f"tr-{i:032x}" for i in range(1, 5)]


def trace(s, step, tid, exp):
    info = {"trace_id": tid, "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}},
            "request_time": "2024-01-01T00:00:00.000Z", "execution_duration": "0.100s", "state": "OK"}
    return s(step, "POST", V3 + "/traces", json={"trace": {"trace_info": info}})


def scenario(s):
    """Issues made, read, changed, searched and linked to traces, with the requests MLflow refuses."""
    e = s("experiment", "POST", API + "/experiments/create", json={"name": "issues"})["experiment_id"]
    e2 = s("another experiment", "POST", API + "/experiments/create", json={"name": "issues-2"})["experiment_id"]
    run = s("a run", "POST", API + "/runs/create", json={"experiment_id": e, "run_name": "r"}).get("run", {}).get("info", {}).get("run_id")

    def create(step, **fields):
        return s(step, "POST", ISSUES, json={"experiment_id": e, "name": "n", "description": "d", **fields}).get("issue", {}).get("issue_id")

    plain = create("plain")
    high = create("every field", name="Slow", description="p99 > 2 s", status="resolved", severity="high", root_causes=["cache", "é"],
                  categories=["latency", "cost"], created_by="me", source_run_id=run)
    low = create("low", severity="low", source_run_id=run)
    medium = create("medium, rejected", severity="medium", status="rejected")
    none = create("not an issue", severity="not_an_issue")
    create("empty optional fields", source_run_id="", created_by="", root_causes=[], categories=[])
    create("null lists", root_causes=None, categories=None)
    s("another experiment's", "POST", ISSUES, json={"experiment_id": e2, "name": "x", "description": "y", "severity": "high"})
    for step, body in [("no name", {"experiment_id": e, "description": "d"}), ("no description", {"experiment_id": e, "name": "n"}),
                       ("no experiment", {"name": "n", "description": "d"}), ("nothing", {}),
                       ("empty name", {"experiment_id": e, "name": "", "description": ""}),
                       ("a number for a name", {"experiment_id": e, "name": 5, "description": "d"}),
                       ("a number for the experiment", {"experiment_id": 7, "name": "n", "description": "d"}),
                       ("unknown experiment", {"experiment_id": "999999", "name": "n", "description": "d"}),
                       ("not an experiment id", {"experiment_id": "abc", "name": "n", "description": "d"})]:
        s("create: " + step, "POST", ISSUES, json=body)

    s("get", "GET", f"{ISSUES}/{high}")
    s("get unknown", "GET", f"{ISSUES}/iss-nope")
    s("get with another id asked", "GET", f"{ISSUES}/{plain}", params={"issue_id": high})
    s("from the ajax-api", "GET", f"/ajax-api/3.0/mlflow/issues/{high}")
    s("change status", "PATCH", f"{ISSUES}/{plain}", json={"issue_id": plain, "status": "resolved"})
    s("change name, description, severity", "PATCH", f"{ISSUES}/{plain}", json={"issue_id": plain, "name": "renamed", "description": "dd", "severity": "low"})
    s("empty name and description change nothing", "PATCH", f"{ISSUES}/{plain}", json={"issue_id": plain, "name": "", "description": ""})
    s("change nothing", "PATCH", f"{ISSUES}/{plain}", json={"issue_id": plain})
    s("change unknown", "PATCH", f"{ISSUES}/iss-nope", json={"issue_id": "iss-nope", "name": "x"})
    s("change with another id in the body", "PATCH", f"{ISSUES}/{low}", json={"issue_id": high, "name": "low2"})

    # Traces linked by issue references, one overridden.
    for i, tid in enumerate(TR):
        trace(s, f"trace {i}", tid, e)

    def link(step, tid, issue, value=None, **more):
        a = {"assessment_name": issue, "trace_id": tid, "issue": value if value is not None else {"issue_name": "n"},
             "source": {"source_type": "LLM_JUDGE", "source_id": "j"}, **more}
        return s(step, "POST", f"{V3}/traces/{tid}/assessments", json={"assessment": a}).get("assessment", {}).get("assessment_id")

    first = link("link 0 to high", TR[0], high, rationale="slow")
    link("link 0 to high again", TR[0], high, span_id="0123456789abcdef")
    link("link 1 to high", TR[1], high)
    link("link 2 to low", TR[2], low, metadata={"k": "v"})
    link("link 3 to an unknown issue", TR[3], "iss-ghost")
    link("an empty reference", TR[3], low, value={})
    s("a feedback named after an issue", "POST", f"{V3}/traces/{TR[3]}/assessments",
      json={"assessment": {"assessment_name": medium, "trace_id": TR[3], "feedback": {"value": 1}, "source": {"source_type": "HUMAN", "source_id": "x"}}})
    s("the reference", "GET", f"{V3}/traces/{TR[0]}/assessments/{first}")
    s("trace with its references", "GET", f"{V3}/traces/{TR[0]}")

    def search(step, **body):
        s("search: " + step, "POST", ISSUES + "/search", json=body)

    search("the experiment", experiment_id=e)
    search("with trace counts", experiment_id=e, include_trace_count=True)
    search("a page", experiment_id=e, max_results=2)
    page = s("a page for its token", "POST", ISSUES + "/search", json={"experiment_id": e, "max_results": 3}).get("next_page_token")
    search("the next page", experiment_id=e, max_results=3, page_token=page)
    for f in ["status = 'resolved'", "status != 'resolved'", f"source_run_id = '{run}'", f"source_run_id != '{run}'", "status = resolved",
              "status = \"pending\"", "status = 'pending' AND source_run_id != 'x'",
              "status = 1", "   ", "name = 'x'", "status > 'a'", "status LIKE 'a'", "status IN ('a')", "status = 'a' OR status = 'b'", "status",
              "'status' = 'a'", "`status` = 'a'", "STATUS = 'a'"]:
        search(f"filter {f.replace(run, '<run>')!r}", experiment_id=e, filter_string=f)
    for mr in (0, -1, 50001):
        search(f"max_results {mr}", experiment_id=e, max_results=mr)
    search("a bad page token", experiment_id=e, page_token="garbage")
    search("unknown experiment", experiment_id="999999")
    search("not an experiment id", experiment_id="abc")

    def traces(step, f):
        s("traces: " + step, "POST", V3 + "/traces/search",
          json={"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": e}}], "filter": f, "order_by": ["request_id"]})

    traces("of high", f"issue.id = '{high}'")
    traces("of low", f"issue.id = \"{low}\"")
    traces("of the ghost", "issue.id = 'iss-ghost'")
    traces("of medium (a feedback's name)", f"issue.id = '{medium}'")
    traces("of high and low", f"issue.id = '{high}' AND issue.id = '{low}'")
    traces("of high, with a tag pattern", f"issue.id = '{high}' AND tags.x LIKE '%'")
    traces("!=", f"issue.id != '{high}'")
    traces("LIKE", "issue.id LIKE 'iss%'")
    traces("a number", "issue.id = 1")
    s("delete a linked trace", "POST", API + "/traces/delete-traces", json={"experiment_id": e, "request_ids": [TR[1]]})
    search("trace counts after", experiment_id=e, include_trace_count=True)
    s("delete the experiment", "POST", API + "/experiments/delete", json={"experiment_id": e})
    create("in a deleted experiment")
    s("get in a deleted experiment", "GET", f"{ISSUES}/{none}")
    s("change in a deleted experiment", "PATCH", f"{ISSUES}/{none}", json={"issue_id": none, "status": "resolved"})
    search("a deleted experiment", experiment_id=e)
    return [e, e2]


class Tokens:
    """Reduces an answer to what the other server's must equal: issue, trace-assessment and run ids in order of
    appearance, times, the scenario's experiment ids; objects as lists of pairs, so key order counts at every depth.
    Page tokens are MLflow's offsets on both: kept."""

    def __init__(self, exps):
        self.exps, self.ids = {str(x): f"<E{i}>" for i, x in enumerate(exps, 1)}, {}

    def value(self, v, key=None):
        if isinstance(v, dict):
            return [(k, self.value(x, k)) for k, x in v.items()]
        if isinstance(v, list):
            return [self.value(x, key) for x in v]
        if isinstance(v, str) and re.fullmatch(r"(iss|a)-[0-9a-f]{32}|[0-9a-f]{32}", v):
            return self.ids.setdefault(v, f"<ID{len(self.ids) + 1}>")
        if key in ("created_timestamp", "last_updated_timestamp", "create_time", "last_update_time", "request_time", "start_time"):
            return "<" + key + ">"
        if key == "experiment_id":
            return self.exps.get(str(v), v)
        if key in ("mlflow.artifactLocation", "artifact_uri", "artifact_location"):
            return "<location>"
        return v


def reduced(steps, exps):
    """The steps with the ids and experiment ids error messages name made tokens, and the fields of a set MLflow
    prints in its hash order sorted."""
    ids, out = {}, []
    for step, status, body in steps:
        if status >= 400 and isinstance(body, dict) and isinstance(body.get("message"), str):
            m = re.sub(r"(iss|a)-[0-9a-f]{32}", lambda x: ids.setdefault(x.group(0), f"<ID{len(ids) + 1}>"), body["message"])
            m = m.replace("{'source_run_id', 'status'}", "{'status', 'source_run_id'}").replace("{'!=', '='}", "{'=', '!='}")
            for i, x in enumerate(exps, 1):
                m = m.replace(f"'{x}'", f"'<E{i}>'").replace(f"id={x} ", f"id=<E{i}> ")
            body = {**body, "message": m}
        out.append((step, status, body))
    return out


# Messages Tally words otherwise: a quoted field is named (MLflow names sqlparse's class).
ON_PURPOSE_MESSAGES = ["search: filter \"'status' = 'a'\""]


def test_answers_match_mlflow(plain):
    oracle = plain.get()
    tally = Server()
    try:
        theirs, ours = Session(oracle.url), Session(tally.url)
        their_exps, our_exps = scenario(theirs), scenario(ours)
        t, o = Tokens(their_exps), Tokens(our_exps)
        problems, notes = compare_steps(reduced(theirs.steps, their_exps), reduced(ours.steps, our_exps), t, o)
        print("\n".join(["messages that differ from MLflow's:"] + notes))
        assert not problems, "\n".join(problems)
        assert [n.split(": message mlflow")[0] for n in notes] == ON_PURPOSE_MESSAGES, notes
        assert tally.proc.poll() is None
    finally:
        tally.stop()


def test_where_tally_answers_otherwise(server):
    """What MLflow answers with a 500 or takes silently, Tally refuses with a 400 naming the field; its PATCH takes
    the issue from the path, as the route names it (MLflow's insists on a body `issue_id` it then ignores)."""
    import requests
    e = requests.post(server.url + API + "/experiments/create", json={"name": "otherwise"}).json()["experiment_id"]
    made = requests.post(server.url + ISSUES, json={"experiment_id": e, "name": "n", "description": "d"}).json()["issue"]
    for fields, message in [({"status": "bogus"}, "Invalid issue status 'bogus'. Valid values are: pending, rejected, resolved"),
                            ({"severity": "HIGH"}, "Invalid issue severity 'HIGH'. Valid values are: not_an_issue, low, medium, high"),
                            ({"root_causes": "abc"}, "Invalid value \"abc\" for parameter 'root_causes' supplied"),
                            ({"source_run_id": "nope"}, "Run with id=nope not found")]:
        r = requests.post(server.url + ISSUES, json={"experiment_id": e, "name": "n", "description": "d", **fields})
        assert r.status_code in (400, 404) and r.json()["message"].startswith(message), (fields, r.text)
    r = requests.patch(f"{server.url}{ISSUES}/{made['issue_id']}", json={"status": "rejected"})
    assert r.status_code == 200 and r.json()["issue"]["status"] == "rejected", r.text
    r = requests.patch(f"{server.url}{ISSUES}/{made['issue_id']}", json={"severity": "extreme"})
    assert r.status_code == 400 and "Invalid issue severity 'extreme'" in r.json()["message"]
    # An issue reference's rationale and issue change (MLflow's update fails on the kind with a 500).
    tid = "tr-" + "ab" * 16
    requests.post(server.url + V3 + "/traces", json={"trace": {"trace_info": {
        "trace_id": tid, "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": e}},
        "request_time": "2024-01-01T00:00:00.000Z", "state": "OK"}}}).raise_for_status()
    a = requests.post(f"{server.url}{V3}/traces/{tid}/assessments", json={"assessment": {
        "assessment_name": made["issue_id"], "trace_id": tid, "issue": {"issue_name": "n"}, "source": {"source_type": "HUMAN", "source_id": "me"}}}).json()
    aid = a["assessment"]["assessment_id"]
    r = requests.patch(f"{server.url}{V3}/traces/{tid}/assessments/{aid}",
                       json={"assessment": {"rationale": "why", "issue": {"issue_name": "renamed"}}, "update_mask": "rationale,issue"})
    assert r.status_code == 200 and r.json()["assessment"]["rationale"] == "why" and r.json()["assessment"]["issue"] == {"issue_name": "renamed"}, r.text
    r = requests.patch(f"{server.url}{V3}/traces/{tid}/assessments/{aid}", json={"assessment": {"issue": {}}, "update_mask": "issue"})
    assert r.status_code == 200 and r.json()["assessment"]["issue"] == {"issue_name": ""}, r.text  # as protobuf reads a name not sent
    r = requests.patch(f"{server.url}{V3}/traces/{tid}/assessments/{aid}", json={"assessment": {"feedback": {"value": 1}}, "update_mask": "feedback"})
    assert r.status_code == 400 and r.json()["message"] == "Cannot update feedback value on an IssueReference assessment."
    # One kind per assessment.
    r = requests.post(f"{server.url}{V3}/traces/{tid}/assessments", json={"assessment": {
        "assessment_name": "x", "trace_id": tid, "issue": {"issue_name": "n"}, "feedback": {"value": 1}}})
    assert r.status_code == 400 and "not several" in r.json()["message"]


# ---------------------------------------------------------------------------------------------------------------------
# 3. MLflow's auth app


def acl_scenario(s):
    """Issues made, read, changed and searched by users of each level, the same requests to either server."""
    e = s("experiment", "POST", API + "/experiments/create", json={"name": "issues-acl"})["experiment_id"]
    alice, bob, carol, dave = acl_users(s, e, {"alice": "READ", "bob": "EDIT", "carol": "MANAGE", "dave": "DENY"})
    made = {}
    for who in (alice, bob, carol, dave):
        made[who[0]] = s(f"{who[0]} creates", "POST", ISSUES, auth=who, json={"experiment_id": e, "name": who[0], "description": "d"}).get("issue", {}).get("issue_id")
    s("anonymous creates", "POST", ISSUES, auth=None, json={"experiment_id": e, "name": "x", "description": "d"})
    s("create without an experiment", "POST", ISSUES, auth=bob, json={"name": "x", "description": "d"})
    issue = made["bob"]
    for who in (alice, bob, carol, dave):
        s(f"{who[0]} gets", "GET", f"{ISSUES}/{issue}", auth=who)
        s(f"{who[0]} changes", "PATCH", f"{ISSUES}/{issue}", auth=who, json={"issue_id": issue, "severity": "low"})
        s(f"{who[0]} searches the experiment", "POST", ISSUES + "/search", auth=who, json={"experiment_id": e})
        s(f"{who[0]} searches every experiment", "POST", ISSUES + "/search", auth=who, json={})
        s(f"{who[0]} searches by run", "POST", ISSUES + "/search", auth=who, json={"experiment_id": e, "filter_string": "source_run_id = 'x'"})
    s("admin searches every experiment", "POST", ISSUES + "/search", json={})
    return [e]


# Where Tally's statuses differ on purpose (MLflow's, Tally's): a create naming no experiment is told what is missing;
# a search naming none sees the experiments the caller reads, as Tally's other searches do (MLflow's refuses it).
OTHERWISE = {"create without an experiment": (403, 400), **{f"{u} searches every experiment": (403, 200) for u in ("alice", "bob", "carol", "dave")}}


@once_per_suite(shifted=True)  # the rules are the service's, whatever the backend
def test_permissions_under_basic_auth(auth):
    oracle = auth.get()
    tally = Server("--auth", "basic", env={"MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD})
    theirs, ours = Session(oracle.url, auth=ADMIN), Session(tally.url, auth=ADMIN)
    try:
        acl_scenario(theirs)
        acl_scenario(ours)
        problems = status_problems(theirs, ours, OTHERWISE)
        assert not problems, "\n".join(problems)
        refused = {step for step, status, _ in ours.steps if status == 403}
        assert {"alice creates", "dave creates", "dave gets", "alice changes", "dave searches the experiment"} <= refused, refused
        # A search of every experiment sees those the caller reads: the experiment's for alice, none for dave.
        seen = {step: sorted(i["name"] for i in body.get("issues", [])) for step, _, body in ours.steps if step.endswith("every experiment")}
        assert seen["alice searches every experiment"] == ["bob", "carol"] and seen["dave searches every experiment"] == [], seen
        assert tally.proc.poll() is None
    finally:
        tally.stop()
