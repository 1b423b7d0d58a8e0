"""MLflow 3 tracing through the unmodified client: @mlflow.trace and start_span export traces (the info to Tally,
the spans to its artifact store under the mlflow.artifactLocation tag it gives), get_trace and search_traces read
them back whole, with no warning; tags, deletes and assessments; traces.search's filters, orders and pages side by
side with a real `mlflow server` given the same traces; the permissions of MLflow's auth app under --auth basic."""
import json
import logging
import time

import pytest
import requests
import mlflow
from mlflow import MlflowClient
from mlflow.entities import AssessmentSource, Feedback

from conftest import MlflowServer, Server, module_server, once_per_suite

V3 = "/api/3.0/mlflow"


@pytest.fixture(scope="module")
def local():
    yield from module_server()


@pytest.fixture
def no_warnings(caplog):
    """Fails the test if the client logged a warning (a trace it could not send, spans it could not read)."""
    caplog.set_level(logging.WARNING, logger="mlflow")
    yield
    bad = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("mlflow")
           and "experiment_ids" not in r.getMessage()]
    assert not bad, bad


@mlflow.trace
def inner(x):
    return x * 2


@mlflow.trace(span_type="CHAIN", attributes={"k": "v"})
def outer(x):
    mlflow.update_current_trace(tags={"mytag": "t1"}, metadata={"mymeta": "m1"})
    return inner(x) + 1


@mlflow.trace
def boom():
    raise ValueError("kaboom")


def traced(fn, *args):
    """Runs a traced call and waits until the client has exported its trace; its id."""
    try:
        fn(*args)
    except ValueError:
        pass
    mlflow.flush_trace_async_logging()
    return mlflow.get_last_active_trace_id()


def test_traces_round_trip_through_the_client(local, no_warnings):
    mlflow.set_experiment("traces-round-trip")
    tid = traced(outer, 3)
    t = mlflow.get_trace(tid)
    assert t.info.state.value == "OK" and t.info.tags["mytag"] == "t1" and t.info.trace_metadata["mymeta"] == "m1"
    assert t.info.tags["mlflow.artifactLocation"].endswith(f"/traces/{tid}/artifacts")
    assert t.info.request_time > 0 and t.info.execution_duration >= 0
    spans = {s.name: s for s in t.data.spans}
    assert set(spans) == {"outer", "inner"} and spans["inner"].parent_id == spans["outer"].span_id
    assert spans["outer"].inputs == {"x": 3} and spans["outer"].outputs == 7 and spans["outer"].attributes["k"] == "v"
    assert spans["outer"].span_type == "CHAIN"

    failed = traced(boom)
    f = mlflow.get_trace(failed)
    assert f.info.state.value == "ERROR" and f.data.spans[0].events[0].name == "exception"

    with mlflow.start_run() as run:
        in_run = traced(outer, 5)
    with mlflow.start_span(name="manual", span_type="LLM") as span:
        span.set_inputs({"q": "hello"})
        span.set_outputs({"a": "world"})
    mlflow.flush_trace_async_logging()
    manual = mlflow.get_last_active_trace_id()

    listed = mlflow.search_traces(return_type="list")
    assert [x.info.trace_id for x in listed] == [manual, in_run, failed, tid]  # newest first
    assert all(len(x.data.spans) >= 1 for x in listed)
    df = mlflow.search_traces()
    assert len(df) == 4 and {"trace_id", "spans", "assessments"} <= set(df.columns)
    assert [x.info.trace_id for x in mlflow.search_traces(run_id=run.info.run_id, return_type="list")] == [in_run]
    MlflowClient().link_traces_to_run([tid, "tr-" + "0" * 32], run_id=run.info.run_id)  # an unknown trace is skipped
    assert [x.info.trace_id for x in mlflow.search_traces(run_id=run.info.run_id, return_type="list")] == [in_run, tid]
    assert [x.info.trace_id for x in mlflow.search_traces(filter_string="trace.status = 'ERROR'", return_type="list")] == [failed]
    assert [x.info.trace_id for x in mlflow.search_traces(filter_string="trace.name = 'manual'", return_type="list")] == [manual]
    ordered = mlflow.search_traces(filter_string="tags.mytag = 't1'", order_by=["timestamp_ms ASC"], return_type="list")
    assert [x.info.trace_id for x in ordered] == [tid, in_run]
    page = MlflowClient().search_traces(locations=[t.info.experiment_id], max_results=3)
    assert len(page) == 3 and page.token
    rest = MlflowClient().search_traces(locations=[t.info.experiment_id], max_results=3, page_token=page.token)
    assert len(rest) == 1 and not rest.token


def test_tags_deletes_and_assessments(local, no_warnings):
    mlflow.set_experiment("traces-edit")
    c = MlflowClient()
    tid = traced(outer, 1)
    c.set_trace_tag(tid, "k2", "v2")
    assert mlflow.get_trace(tid).info.tags["k2"] == "v2"
    c.delete_trace_tag(tid, "k2")
    assert "k2" not in mlflow.get_trace(tid).info.tags
    with pytest.raises(mlflow.exceptions.MlflowException, match="No trace tag with key 'k2'"):
        c.delete_trace_tag(tid, "k2")

    fb = mlflow.log_feedback(trace_id=tid, name="quality", value=0.8, rationale="ok", metadata={"m": "1"},
                             source=AssessmentSource(source_type="HUMAN", source_id="bob"))
    assert fb.assessment_id.startswith("a-") and fb.value == 0.8
    ex = mlflow.log_expectation(trace_id=tid, name="expected", value={"answer": 42})
    up = mlflow.update_assessment(trace_id=tid, assessment_id=fb.assessment_id,
                                  assessment=Feedback(name="quality", value=0.9, rationale="better", metadata={"n": "2"}))
    assert (up.value, up.rationale, up.metadata, up.source.source_id) == (0.9, "better", {"m": "1", "n": "2"}, "bob")
    assert up.create_time_ms == fb.create_time_ms and up.last_update_time_ms >= fb.last_update_time_ms
    assert mlflow.get_assessment(tid, ex.assessment_id).value == {"answer": 42}
    over = mlflow.override_feedback(trace_id=tid, assessment_id=fb.assessment_id, value=0.1, rationale="judge was wrong")
    got = {a.assessment_id: a for a in mlflow.get_trace(tid).info.assessments}
    assert got[fb.assessment_id].valid is False and got[over.assessment_id].valid is True and got[over.assessment_id].overrides == fb.assessment_id
    found = mlflow.search_traces(filter_string="feedback.quality = '0.1'", return_type="list")
    assert [x.info.trace_id for x in found] == [tid]
    assert mlflow.search_traces(filter_string="feedback.quality = '0.9'", return_type="list") == []  # overridden: invalid
    assert len(mlflow.search_traces(filter_string="feedback.quality < 0.5", return_type="list")) == 1
    mlflow.delete_assessment(tid, ex.assessment_id)
    assert ex.assessment_id not in {a.assessment_id for a in mlflow.get_trace(tid).info.assessments}
    mlflow.delete_assessment(tid, ex.assessment_id)  # twice: no error, as in MLflow

    exp = mlflow.get_trace(tid).info.experiment_id
    keep = traced(outer, 2)
    assert c.delete_traces(experiment_id=exp, trace_ids=[tid]) == 1
    with pytest.raises(mlflow.exceptions.MlflowException, match="not found"):
        c.get_trace(tid)
    cutoff = int(time.time() * 1000) + 1
    assert c.delete_traces(experiment_id=exp, max_timestamp_millis=cutoff, max_traces=10) == 1
    with pytest.raises(mlflow.exceptions.MlflowException, match="not found"):
        c.get_trace(keep)


def test_genai_evaluate_logs_traces_and_assessments(local, no_warnings):
    """`mlflow.genai.evaluate` with a custom scorer: a run with the scorer's mean, one trace per row linked to it, each
    with the scorer's feedback and the row's expectation, all read back through the client."""
    from mlflow.genai.scorers import scorer

    @scorer
    def exact(outputs, expectations):
        return outputs == expectations["expected"]

    mlflow.set_experiment("genai-evaluate")
    data = [{"inputs": {"question": "hi"}, "expectations": {"expected": "HI"}},
            {"inputs": {"question": "yo"}, "expectations": {"expected": "nope"}}]
    result = mlflow.genai.evaluate(data=data, predict_fn=lambda question: question.upper(), scorers=[exact])
    assert result.metrics["exact/mean"] == 0.5
    assert MlflowClient().get_run(result.run_id).data.metrics["exact/mean"] == 0.5
    traces = mlflow.search_traces(run_id=result.run_id, return_type="list")
    assert len(traces) == 2
    for t in traces:
        by_name = {a.name: a for a in t.info.assessments}
        assert set(by_name) == {"exact", "expected"}, by_name
        question = t.data.spans[0].inputs["question"]
        assert by_name["exact"].value == (question == "hi") and by_name["expected"].value == ("HI" if question == "hi" else "nope")


def trace_body(tid, exp, ms, state="OK", duration="0.250s", tags=None, metadata=None, preview=None):
    info = {"trace_id": tid, "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}},
            "request_time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z",
            "execution_duration": duration, "state": state, "tags": tags or {}, "trace_metadata": metadata or {}}
    if preview:
        info["request_preview"] = preview
    return {"trace": {"trace_info": info}}


def seed(base):
    """The same 12 traces in a new experiment of the server at `base`; its id."""
    exp = requests.post(base + "/api/2.0/mlflow/experiments/create", json={"name": "traces-diff"}).json()["experiment_id"]
    for i in range(12):
        tags = {"mlflow.traceName": ["chat", "embed", "rerank"][i % 3], "team": ["a", "b"][i % 2]}
        if i % 4 == 0:
            tags["priority"] = str(i)
        meta = {"mlflow.sourceRun": "run-%d" % (i % 3), "mlflow.user": "user%d" % (i % 2)}
        body = trace_body("tr-%032x" % (i + 1), exp, 1_700_000_000_000 + (i % 6) * 1000, state=["OK", "ERROR"][i % 5 == 0],
                          duration="%d.%03ds" % (i % 4, i * 7 % 1000), tags=tags, metadata=meta, preview="q%d" % i)
        r = requests.post(base + V3 + "/traces", json=body)
        assert r.status_code == 200, r.text
        if i % 3 == 0:
            a = {"assessment": {"assessment_name": "quality", "trace_id": body["trace"]["trace_info"]["trace_id"],
                                "source": {"source_type": "HUMAN", "source_id": "x"}, "feedback": {"value": i / 10}}}
            assert requests.post(base + V3 + f"/traces/tr-{i + 1:032x}/assessments", json=a).status_code == 200
        if i % 4 == 1:  # prompt links: qa/1 on four traces, qa/2 on two of them
            versions = [{"name": "qa", "version": "1"}] + ([{"name": "qa", "version": "2"}] if i % 8 == 1 else [])
            r = requests.post(base + "/api/2.0/mlflow/traces/link-prompts", json={"trace_id": f"tr-{i + 1:032x}", "prompt_versions": versions})
            assert r.status_code == 200, r.text
    return exp


FILTERS = [None, "trace.status = 'ERROR'", "trace.status != 'OK'", "tags.team = 'a'", "tags.team LIKE 'a%'", "tags.team ILIKE 'A'",
           "tags.priority IS NULL", "tags.priority IS NOT NULL", "tags.priority = '4' AND trace.status = 'OK'",
           "metadata.`mlflow.user` = 'user1'", "request_metadata.`mlflow.user` != 'user1'", "trace.name = 'embed'",
           "trace.timestamp_ms > 1700000002000",
           "trace.timestamp_ms <= 1700000002000 AND trace.execution_time_ms >= 1000", "attribute.run_id = 'run-1'",
           "trace.request_id = 'tr-%032x'" % 3, "tags.team RLIKE '^b$'", "feedback.quality > 0.5", "feedback.quality = '0.3'",
           "feedback.quality IS NOT NULL", "trace.end_time_ms > 1700000003500", "trace.client_request_id = 'none'",
           "prompt = 'qa/1'", "prompt = 'qa/1' AND tags.team = 'b' AND trace.status = 'OK'", "tags.`mlflow.linkedPrompts` = 'qa/2'"]
ORDERS = [[], ["timestamp_ms ASC"], ["execution_time_ms DESC"], ["tags.priority DESC"], ["name ASC", "timestamp_ms DESC"],
          ["status"], ["request_id DESC"], ["metadata.`mlflow.user` ASC"]]  # end_time: MLflow 3.17 answers 500 (no such column)
# Bad searches, and whether MLflow's message can be matched word for word (its lists of valid keys print a Python set,
# whose order changes with each server process).
BAD = [({"filter": "foo = 'bar'"}, False), ({"filter": "tags.x = "}, False), ({"filter": "tags.t = 'v' OR tags.t = 'w'"}, True),
       ({"order_by": ["nonexistent DESC"]}, False), ({"order_by": ["timestamp_ms sideways"]}, True), ({"max_results": 0}, True),
       ({"max_results": -1}, True), ({"page_token": "garbage"}, True), ({"locations": None}, True),
       ({"filter": "prompt != 'qa/1'"}, True), ({"filter": "prompt = 'qa'"}, True), ({"filter": "trace.prompt LIKE 'qa%'"}, True),
       ({"filter": "tags.mlflow.linkedPrompts IS NULL"}, True)]


def search(base, exp, auth=None, **fields):
    body = {"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}}], "max_results": 100, **fields}
    body = {k: v for k, v in body.items() if v is not None}
    return requests.post(base + V3 + "/traces/search", json=body, auth=auth)


def test_search_matches_mlflow(local):
    oracle = MlflowServer()
    try:
        exps = [seed(local.url), seed(oracle.url)]
        for f in FILTERS:
            for order in ORDERS:
                got = []
                for base, exp in zip((local.url, oracle.url), exps):
                    r = search(base, exp, filter=f, order_by=order)
                    assert r.status_code == 200, (f, order, r.text)
                    got.append([t["trace_id"] for t in r.json().get("traces", [])])
                assert got[0] == got[1], (f, order)
        # Pages of 5: the same traces on each page, a token exactly while more remain (MLflow's token also ends a full last page).
        for base, exp in zip((local.url, oracle.url), exps):
            ids, token = [], None
            while True:
                page = search(base, exp, max_results=5, page_token=token, order_by=["request_id"]).json()
                ids += [t["trace_id"] for t in page.get("traces", [])]
                token = page.get("next_page_token")
                if not token:
                    break
            assert ids == ["tr-%032x" % i for i in range(1, 13)]
        for bad, exact in BAD:
            ours, theirs = (search(base, exp, **bad) for base, exp in zip((local.url, oracle.url), exps))
            assert ours.status_code == theirs.status_code == 400, (bad, ours.text, theirs.text)
            assert ours.json()["error_code"] == theirs.json()["error_code"], bad
            assert not exact or ours.json()["message"] == theirs.json()["message"], bad
        # Where MLflow 3.17 answers 500 (a server bug), Tally answers 400.
        r = search(local.url, exps[0], order_by=["timestamp_ms", "timestamp_ms"])
        assert r.status_code == 400 and "duplicate fields" in r.json()["message"]
        # The info as the client reads it: the same fields for the same trace (the servers' own tags and metadata aside).
        a = requests.get(local.url + V3 + "/traces/tr-%032x" % 4).json()["trace"]["trace_info"]
        b = requests.get(oracle.url + V3 + "/traces/tr-%032x" % 4).json()["trace"]["trace_info"]
        for k in ("trace_id", "request_time", "execution_duration", "state", "request_preview"):
            assert a[k] == b[k], k
        location = "mlflow.artifactLocation"
        assert a["tags"].pop(location) == f"mlflow-artifacts:/{exps[0]}/traces/{a['trace_id']}/artifacts"
        assert b["tags"].pop(location) == f"mlflow-artifacts:/{exps[1]}/traces/{b['trace_id']}/artifacts"
        assert a["tags"] == b["tags"] and a["trace_metadata"] == b["trace_metadata"]
        assert [x["feedback"] for x in a["assessments"]] == [{"value": 0.3}] and [x["assessment_name"] for x in b["assessments"]] == ["quality"]
        for path in ("/traces/tr-%032x" % 99,):
            ours, theirs = requests.get(local.url + V3 + path), requests.get(oracle.url + V3 + path)
            assert ours.status_code == theirs.status_code == 404 and ours.json() == {k: theirs.json()[k] for k in ("error_code", "message")}
        # An assessment's value is a protobuf Value on MLflow's side: numbers answered as doubles, at any depth, and
        # searched as such.
        answers = []
        for base in (local.url, oracle.url):
            got = []
            for kind, value in (("feedback", 7), ("feedback", [1, 2.5, "3", True]), ("expectation", 3)):
                a = {"assessment": {"assessment_name": "score" if value == 7 else "other", "trace_id": "tr-%032x" % 2,
                                    "source": {"source_type": "HUMAN", "source_id": "x"}, kind: {"value": value}}}
                r = requests.post(base + V3 + "/traces/tr-%032x/assessments" % 2, json=a)
                assert r.status_code == 200, r.text
                made = r.json()["assessment"]
                fetched = requests.get(base + V3 + "/traces/tr-%032x/assessments/%s" % (2, made["assessment_id"])).json()["assessment"]
                got += [json.dumps(made[kind]), json.dumps(fetched[kind])]  # as text: 7 == 7.0 in Python
            for f in ("feedback.score = '7'", "feedback.score = '7.0'", "feedback.score > 6"):
                got.append(sorted(t["trace_id"] for t in search(base, exps[0] if base == local.url else exps[1], filter=f).json().get("traces", [])))
            answers.append(got)
        assert answers[0] == answers[1], answers
    finally:
        oracle.stop()


CORRELATIONS = [("trace.status = 'ERROR'", "tags.team = 'a'", None), ("tags.team = 'a'", "tags.team = 'a'", None),
                ("tags.team = 'a'", "tags.team = 'b'", None), ("tags.priority IS NOT NULL", "trace.name = 'chat'", None),
                ("trace.status = 'ERROR'", "tags.team = 'b'", "trace.timestamp_ms > 1700000001000"),
                ("feedback.quality > 0.5", "tags.team = 'a'", None), ("trace.name = 'none'", "tags.team = 'a'", None),
                ("tags.team = 'a'", "trace.status = 'OK'", "trace.name = 'none'"), ("metadata.`mlflow.user` = 'user1'", "tags.team = 'b'", None)]


def test_batch_infos_and_filter_correlation_match_mlflow(local, no_warnings):
    """`traces/batchGetInfos` (the first step of the client's batch_get_traces) and
    `traces/calculate-filter-correlation` (NPMI of two filters, the UI's insight view): the same answers as a real
    mlflow server for the same traces, NaN and the -1 and 1 rules included."""
    oracle, fresh = MlflowServer(), Server()  # a server of its own: the module's already holds these trace ids
    try:
        exps = [seed(fresh.url), seed(oracle.url)]
        for trace_ids, experiment_ids in [(["tr-%032x" % 3, "tr-%032x" % 99, "tr-%032x" % 1, "tr-%032x" % 3], None), (["tr-%032x" % 2], []),
                                          (["tr-%032x" % 2], ["0"]), (["tr-%032x" % 2, "tr-%032x" % 5], "own")]:
            got = []
            for base, exp in zip((fresh.url, oracle.url), exps):
                body = {"trace_ids": trace_ids} | ({} if experiment_ids is None else {"experiment_ids": [exp] if experiment_ids == "own" else experiment_ids})
                r = requests.post(base + V3 + "/traces/batchGetInfos", json=body)
                assert r.status_code == 200, r.text
                infos = r.json().get("trace_infos", [])
                for t in infos:  # where each server keeps the trace's artifacts differs by nature
                    assert t["tags"].pop("mlflow.artifactLocation").endswith(f"/traces/{t['trace_id']}/artifacts")
                got.append([{k: t[k] for k in ("trace_id", "state", "request_time", "execution_duration", "request_preview", "tags",
                                                "trace_metadata")} for t in infos])
            assert got[0] == got[1], (trace_ids, experiment_ids, got)
        for body, status in [({}, 400), ({"trace_ids": []}, 200), ({"trace_ids": "tr-1"}, 400)]:
            ours, theirs = (requests.post(base + V3 + "/traces/batchGetInfos", json=body) for base in (fresh.url, oracle.url))
            assert ours.status_code == theirs.status_code == status, (body, ours.text, theirs.text)
            assert (ours.json() == theirs.json() == {}) if status == 200 else ours.json()["error_code"] == theirs.json()["error_code"], (body, ours.text)
        for f1, f2, base_filter in CORRELATIONS:
            answers = []
            for base, exp in zip((fresh.url, oracle.url), exps):
                body = {"experiment_ids": [exp], "filter_string1": f1, "filter_string2": f2} | ({"base_filter": base_filter} if base_filter else {})
                r = requests.post(base + V3 + "/traces/calculate-filter-correlation", json=body)
                assert r.status_code == 200, (f1, f2, r.text)
                answers.append(r.text)
            assert json.loads(answers[0]) == json.loads(answers[1]) or answers[0].replace(" ", "") == answers[1].replace(" ", ""), (f1, f2, base_filter, answers)
        for body in [{"experiment_ids": [exps[0]], "filter_string1": "tags.team = 'a'"}, {"experiment_ids": [exps[0]], "filter_string1": "nope", "filter_string2": "tags.a = 'b'"}]:
            ours = requests.post(fresh.url + V3 + "/traces/calculate-filter-correlation", json=body)
            theirs = requests.post(oracle.url + V3 + "/traces/calculate-filter-correlation", json=body | {"experiment_ids": [exps[1]]})
            assert ours.status_code == theirs.status_code == 400 and ours.json()["error_code"] == theirs.json()["error_code"], (body, ours.text, theirs.text)
        # The client's batch read, whose first request this is.
        ids = [traced(outer, 3), traced(outer, 4)]
        traces = MlflowClient(local.url)._tracing_client.batch_get_traces(ids)
        assert sorted(t.info.trace_id for t in traces) == sorted(ids) and all(len(t.data.spans) == 2 for t in traces)
    finally:
        oracle.stop()
        fresh.stop()


def test_permissions_under_basic_auth():
    s = Server("--auth", "basic", env={"MLFLOW_AUTH_ADMIN_PASSWORD": "admin-password-1"})
    try:
        admin = ("admin", "admin-password-1")
        api = s.url + "/api/2.0/mlflow"
        exp = requests.post(api + "/experiments/create", json={"name": "traces-acl"}, auth=admin).json()["experiment_id"]
        for user, level in (("carol", "READ"), ("bob", "EDIT")):
            assert requests.post(api + "/users/create", json={"username": user, "password": user + "-password"}, auth=admin).status_code == 200
            r = requests.post(s.url + V3 + "/users/permissions/grant", auth=admin,
                              json={"username": user, "resource_type": "experiment", "resource_id": exp, "permission": level})
            assert r.status_code == 200, r.text
        carol, bob = ("carol", "carol-password"), ("bob", "bob-password")
        body = trace_body("tr-%032x" % 7, exp, 1_700_000_000_000)
        assert requests.post(s.url + V3 + "/traces", json=body, auth=carol).status_code == 403
        assert requests.post(s.url + V3 + "/traces", json=body, auth=bob).status_code == 200
        tid = "tr-%032x" % 7
        assert requests.get(s.url + V3 + "/traces/" + tid, auth=carol).status_code == 200
        assert len(search(s.url, exp, auth=carol).json()["traces"]) == 1
        # traces/metrics needs READ on every experiment named (MLflow's validate_can_query_trace_metrics).
        other = requests.post(api + "/experiments/create", json={"name": "traces-acl-other"}, auth=admin).json()["experiment_id"]
        metrics = lambda ids, who: requests.post(s.url + V3 + "/traces/metrics", auth=who, json={
            "experiment_ids": ids, "view_type": "TRACES", "metric_name": "trace_count", "aggregations": [{"aggregation_type": "COUNT"}]})
        assert metrics([exp], carol).json() == {"data_points": [{"metric_name": "trace_count", "values": {"COUNT": 1.0}}]}
        assert metrics([exp, other], carol).status_code == 200  # READ by default, as in MLflow
        r = requests.post(s.url + V3 + "/users/permissions/grant", auth=admin,
                          json={"username": "carol", "resource_type": "experiment", "resource_id": other, "permission": "DENY"})
        assert r.status_code == 200, r.text
        assert metrics([exp, other], carol).status_code == 403
        assert metrics([exp, other], admin).status_code == 200
        assert requests.patch(api + f"/traces/{tid}/tags", json={"key": "k", "value": "v"}, auth=carol).status_code == 403
        assert requests.patch(api + f"/traces/{tid}/tags", json={"key": "k", "value": "v"}, auth=bob).status_code == 200
        a = {"assessment": {"assessment_name": "q", "feedback": {"value": 1}}}
        assert requests.post(s.url + V3 + f"/traces/{tid}/assessments", json=a, auth=carol).status_code == 403
        assert requests.post(s.url + V3 + f"/traces/{tid}/assessments", json=a, auth=bob).status_code == 200
        delete = {"experiment_id": exp, "request_ids": [tid]}
        assert requests.post(api + "/traces/delete-traces", json=delete, auth=bob).status_code == 403  # MANAGE only
        # An unknown trace is unreadable to a non-admin (whether it exists is not told), a plain 404 to the admin.
        assert requests.get(s.url + V3 + "/traces/tr-%032x" % 8, auth=carol).status_code == 403
        assert requests.get(s.url + V3 + "/traces/tr-%032x" % 8, auth=admin).status_code == 404
        assert requests.post(api + "/traces/delete-traces", json=delete, auth=admin).json() == {"traces_deleted": 1}
        assert requests.get(s.url + V3 + "/traces/" + tid).status_code == 401
    finally:
        s.stop()


def raw_spans(tid, name):
    """A `traces.json` of one span, as MLflow's client writes it, for a trace made over REST."""
    import base64
    import json
    ident = base64.b64encode(bytes.fromhex(tid[3:])).decode()
    span = {"trace_id": ident, "span_id": base64.b64encode(b"\x01" * 8).decode(), "parent_span_id": None, "name": name,
            "start_time_unix_nano": 1_700_000_000_000_000_000, "end_time_unix_nano": 1_700_000_000_250_000_000, "events": [],
            "status": {"code": "STATUS_CODE_OK", "message": ""},
            "attributes": {"mlflow.traceRequestId": json.dumps(tid), "mlflow.spanType": '"LLM"', "mlflow.spanInputs": '{"q": 1}',
                           "mlflow.spanOutputs": "2"}, "links": []}
    return json.dumps({"spans": [span]})


def comparable(t):
    """What an import keeps of a trace: everything but where each server keeps its spans."""
    tags = {k: v for k, v in t.info.tags.items() if k not in ("mlflow.artifactLocation", "mlflow.trace.spansLocation")}
    meta = {k: v for k, v in t.info.trace_metadata.items() if k != "mlflow.trace.infoFinalized"}
    return (t.info.trace_id, t.info.state.value, t.info.request_time, t.info.execution_duration, tags, meta,
            sorted((a.assessment_id, a.name, a.valid, str(a.value)) for a in t.info.assessments),
            [(s.name, s.span_type, s.inputs, s.outputs) for s in t.data.spans])


def test_prompts_linked_to_traces(local, no_warnings):
    """A prompt loaded inside a trace: MLflow's client tags the trace and links the version (traces/link-prompts, from
    a thread of its own), and a search by prompt finds the trace; a link made through the client's API likewise."""
    mlflow.set_experiment("traces-prompts")
    mlflow.genai.register_prompt("qa-linked", "Q: {{q}}")
    second = mlflow.genai.register_prompt("qa-linked", "Question: {{q}}")

    @mlflow.trace
    def ask(version):
        return mlflow.genai.load_prompt(f"prompts:/qa-linked/{version}").format(q="why")

    first, by_two = traced(ask, 1), traced(ask, 2)
    plain = traced(inner, 1)

    def found(f):
        return [t.info.trace_id for t in mlflow.search_traces(filter_string=f, return_type="list")]

    deadline = time.time() + 30  # the client links from a background thread
    while found("prompt = 'qa-linked/2'") != [by_two] and time.time() < deadline:
        time.sleep(0.2)
    assert found("prompt = 'qa-linked/2'") == [by_two]
    assert found("prompt = 'qa-linked/1'") == [first] and found("prompt = 'qa-linked/3'") == []
    assert json.loads(mlflow.get_trace(first).info.tags["mlflow.linkedPrompts"]) == [{"name": "qa-linked", "version": "1"}]
    MlflowClient().link_prompt_versions_to_trace(prompt_versions=[second], trace_id=plain)
    assert found("tags.`mlflow.linkedPrompts` = 'qa-linked/2'") == [plain, by_two]
    with pytest.raises(mlflow.exceptions.MlflowException, match="Only '=' is supported"):
        found("prompt != 'qa-linked/2'")


@once_per_suite(shifted=True)  # imports into a data directory of its own
def test_import_carries_traces(local):
    """From MLflow's database (spans from its tracking store and from its artifacts) and through its API: the same
    traces, readable whole by the client from Tally; a rerun imports nothing again."""
    import os
    import shutil
    import tempfile
    from test_import import import_into
    m = MlflowServer()
    work = tempfile.mkdtemp(prefix="tally-import-traces-")
    try:
        mlflow.set_tracking_uri(m.url)
        mlflow.set_experiment("traced")
        ids = [traced(outer, 3), traced(boom)]
        MlflowClient().set_trace_tag(ids[0], "reviewed", "yes")
        with mlflow.start_run() as linked:
            pass
        MlflowClient().link_traces_to_run([ids[1]], linked.info.run_id)
        # Prompt links: through the client (which also tags the trace), and by the API alone (no tag: only MLflow's
        # database tells of it).
        prompt = mlflow.genai.register_prompt("qa-import", "Q: {{q}}")
        MlflowClient().link_prompt_versions_to_trace(prompt_versions=[prompt], trace_id=ids[0])
        r = requests.post(m.url + "/api/2.0/mlflow/traces/link-prompts",
                          json={"trace_id": ids[1], "prompt_versions": [{"name": "qa-import", "version": "1"}]})
        assert r.status_code == 200, r.text
        mlflow.log_feedback(trace_id=ids[0], name="quality", value=0.7, rationale="fine")
        mlflow.log_expectation(trace_id=ids[0], name="expected", value={"answer": 7})
        exp = mlflow.get_trace(ids[0]).info.experiment_id
        raw = "tr-" + "ab" * 16  # spans in MLflow's artifacts, not its tracking store
        r = requests.post(m.url + V3 + "/traces", json=trace_body(raw, exp, 1_700_000_000_000, tags={"mlflow.traceName": "raw"}))
        assert r.status_code == 200, r.text
        put = requests.put(m.url + f"/api/2.0/mlflow-artifacts/artifacts/{exp}/traces/{raw}/artifacts/traces.json", data=raw_spans(raw, "raw"))
        assert put.status_code == 200, put.text
        ids.append(raw)
        expected = {tid: comparable(mlflow.get_trace(tid)) for tid in ids}
        assert expected[raw][-1] == [("raw", "LLM", {"q": 1}, 2)]
        for kind in ("db", "url"):
            d = os.path.join(work, kind)
            result = import_into(m, os.path.join(d, "data"), kind=kind)
            assert any(line.split() == ["traces", "3"] for line in result.stdout.splitlines()), result.stdout + result.stderr
            s = Server(directory=d, embedded=True)
            try:
                mlflow.set_tracking_uri(s.url)
                for tid in ids:
                    got = mlflow.get_trace(tid)
                    assert got is not None and comparable(got) == expected[tid], (kind, tid)
                    assert got.info.tags["mlflow.artifactLocation"].startswith("mlflow-artifacts:/")
                assert {t.info.trace_id for t in mlflow.search_traces(locations=[got.info.experiment_id], return_type="list")} == set(ids)
                if kind == "db":  # MLflow's API does not show run links; its database does
                    assert [t.info.trace_id for t in mlflow.search_traces(run_id=linked.info.run_id, return_type="list")] == [ids[1]]
                # Prompt links: every one from the database; through the API, those the client's tag names.
                by_prompt = {t.info.trace_id for t in mlflow.search_traces(filter_string="prompt = 'qa-import/1'", return_type="list")}
                assert by_prompt == ({ids[0], ids[1]} if kind == "db" else {ids[0]}), kind
            finally:
                mlflow.set_tracking_uri(local.url)
                s.stop(keep=True)
        again = import_into(m, os.path.join(work, "db", "data"))
        assert any(line.split() == ["traces", "0"] for line in again.stdout.splitlines()), again.stdout
        # A prompt link made in MLflow since (by the API: no tag changes): the next rerun brings that trace up to date.
        r = requests.post(m.url + "/api/2.0/mlflow/traces/link-prompts", json={"trace_id": raw, "prompt_versions": [{"name": "qa-import", "version": "1"}]})
        assert r.status_code == 200, r.text
        linked = import_into(m, os.path.join(work, "db", "data"))
        assert any(line.split() == ["traces", "updated", "1"] for line in linked.stdout.splitlines()), linked.stdout
        # And back out to a fresh MLflow, whose client then reads the same traces from it.
        import subprocess
        from conftest import TALLY
        fresh = MlflowServer()
        try:
            out = subprocess.run([TALLY, "export", "mlflow", "--to", fresh.url, "--data-dir", os.path.join(work, "db", "data")],
                                 capture_output=True, text=True, timeout=600)
            assert out.returncode == 0 and any(line.split() == ["traces", "3"] for line in out.stdout.splitlines()), out.stdout + out.stderr
            mlflow.set_tracking_uri(fresh.url)
            for tid in ids:
                got = mlflow.get_trace(tid)
                assert got is not None and comparable(got) == expected[tid], tid
            by_prompt = {t.info.trace_id for t in mlflow.search_traces(filter_string="prompt = 'qa-import/1'", return_type="list")}
            assert by_prompt == {ids[0], ids[1], raw}  # MLflow's own search finds the links the export made (raw's: the rerun's)
        finally:
            fresh.stop()
    finally:
        mlflow.set_tracking_uri(local.url)
        m.stop()
        shutil.rmtree(work, ignore_errors=True)
