"""MLflow 3's human review (`mlflow.genai.label_schemas`, `mlflow.genai.review_queues`; `/api/3.0/mlflow/label-schemas/…`
and `/review-queues/…`) through the unmodified client: questions of each input kind, the default question made on the
first listing, edits within a kind, a user's own queue and a custom one, traces added, reviewed, reopened and removed,
and queues forgetting deleted traces.

Side by side with a real `mlflow server` (3.17, SQLite, from the venv): the same raw requests to both, the answers
compared once ids, clocks and experiment ids are reduced to tokens: the same status, error_code, message and body, key
order included at every depth. Then MLflow's auth app: the same requests as its users to `mlflow server --app-name
basic-auth` and to Tally, the same statuses."""
import re

import pytest
import mlflow

from conftest import ORACLE_ADMIN_PASSWORD as ADMIN_PASSWORD, RawSession as Session, Server, acl_users, compare_steps, module_server, status_problems

V3 = "/api/3.0/mlflow"
LS = V3 + "/label-schemas"
RQ = V3 + "/review-queues"
API = "/api/2.0/mlflow"
ADMIN = ("admin", ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def local():
    yield from module_server()


def trace(s, step, tid, exp, auth=None):
    """Logs a trace of id `tid` in `exp` through the raw API (the same id on either server)."""
    info = {"trace_id": tid, "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}},
            "request_time": "2024-01-01T00:00:00.000Z", "execution_duration": "0.100s", "state": "OK"}
    kw = {} if auth is None else {"auth": auth}
    return s(step, "POST", V3 + "/traces", json={"trace": {"trace_info": info}}, **kw)


# ---------------------------------------------------------------------------------------------------------------------
# 1. The client


def test_review_through_the_client(local, no_warnings):
    from mlflow.exceptions import MlflowException
    from mlflow.genai import label_schemas as ls, review_queues as rq
    from mlflow.genai.label_schemas import InputCategorical, InputNumeric, InputPassFail, InputText

    exp = mlflow.set_experiment("review-client").experiment_id
    correct = ls.create_label_schema("Is it correct?", type="feedback", input=InputPassFail(positive_label="Yes", negative_label="No"),
                                     instruction="Check the facts.", enable_comment=True)
    tone = ls.create_label_schema("tone", type="feedback", input=InputCategorical(options=["kind", "rude"], multi_select=True))
    score = ls.create_label_schema("score", type="expectation", input=InputNumeric(min_value=0, max_value=10))
    answer = ls.create_label_schema("answer", type="expectation", input=InputText(max_length=200))
    assert correct.schema_id.startswith("ls-") and correct.experiment_id == exp and correct.enable_comment
    listed = ls.list_label_schemas()
    assert [s.name for s in listed] == ["Feedback", "answer", "score", "tone", "Is it correct?"]  # the default made now, newest first
    assert listed[0].is_default and listed[0].input == InputText() and listed[0].instruction == "Share any feedback on this trace."
    assert ls.get_label_schema(schema_id=tone.schema_id).input == InputCategorical(options=["kind", "rude"], multi_select=True)
    assert ls.get_label_schema("score", experiment_id=exp).input == InputNumeric(min_value=0.0, max_value=10.0)
    page = ls.list_label_schemas(max_results=2)
    assert len(page) == 2 and page.token
    assert [s.name for s in ls.list_label_schemas(max_results=2, page_token=page.token)] == ["score", "tone"]

    edited = ls.update_label_schema(tone.schema_id, name="Tone", input=InputCategorical(options=["kind", "rude", "flat"], multi_select=True))
    assert edited.name == "Tone" and edited.input.options == ["kind", "rude", "flat"] and edited.updated_at >= edited.created_at
    with pytest.raises(MlflowException, match="cannot be changed after creation"):
        ls.update_label_schema(score.schema_id, input=InputText())
    with pytest.raises(MlflowException, match="already exists"):
        ls.create_label_schema("score", type="feedback", input=InputText())
    with pytest.raises(MlflowException, match="reserved"):
        ls.create_label_schema("feedback", type="feedback", input=InputText())
    with pytest.raises(MlflowException, match="cannot be deleted"):
        ls.delete_label_schema(schema_id=listed[0].schema_id)
    ls.delete_label_schema(schema_id=answer.schema_id)
    ls.delete_label_schema(schema_id=answer.schema_id)  # nothing there: no error, as MLflow's
    with pytest.raises(MlflowException, match="not found"):
        ls.get_label_schema(schema_id=answer.schema_id)

    # Traces to review.
    ids = []
    for i in range(3):
        with mlflow.start_span(name=f"ask {i}") as span:
            span.set_inputs({"q": i})
        ids.append(span.trace_id)
    mlflow.flush_trace_async_logging()

    mine = rq.get_or_create_user_queue(" Alice ")
    assert mine.name == "alice" and mine.users == ["alice"] and rq.get_or_create_user_queue("alice").queue_id == mine.queue_id
    team = rq.create_review_queue("Team", queue_type="custom", users=["Bob", "carol"], schema_ids=[correct.schema_id, tone.schema_id])
    assert team.users == ["bob", "carol"] and sorted(team.schema_ids) == sorted([correct.schema_id, tone.schema_id])
    assert rq.get_review_queue(name="team").queue_id == team.queue_id
    assert [q.name for q in rq.list_review_queues()] == ["Team", "alice"]
    assert [q.name for q in rq.list_review_queues(user="BOB")] == ["Team"]

    items = rq.add_items_to_review_queue(team.queue_id, item_ids=ids + [ids[0]])
    assert [i.item_id for i in items] == ids and {str(i.status) for i in items} == {"pending"}
    with pytest.raises(MlflowException, match="do not exist in experiment"):
        rq.add_items_to_review_queue(team.queue_id, item_ids=["tr-" + "0" * 32])
    with pytest.raises(MlflowException, match="locked once items"):
        rq.update_review_queue(team.queue_id, schema_ids=[correct.schema_id])
    done = rq.set_review_queue_item_status(team.queue_id, item_id=ids[1], status="complete", completed_by="Bob")
    assert str(done.status) == "complete" and done.completed_by == "bob" and done.completed_time_ms
    again = rq.set_review_queue_item_status(team.queue_id, item_id=ids[1], status="complete", completed_by="carol")
    assert again.completed_by == "bob"  # the same status again changes nothing
    assert [i.item_id for i in rq.list_review_queue_items(team.queue_id, status="complete")] == [ids[1]]
    reopened = rq.set_review_queue_item_status(team.queue_id, item_id=ids[1], status="pending")
    assert str(reopened.status) == "pending" and reopened.completed_by is None
    rq.remove_items_from_review_queue(team.queue_id, item_ids=[ids[2]])
    assert sorted(i.item_id for i in rq.list_review_queue_items(team.queue_id)) == sorted(ids[:2])

    renamed = rq.update_review_queue(team.queue_id, name="Reviewers", users=["dan"])
    assert renamed.name == "Reviewers" and renamed.users == ["dan"]
    with pytest.raises(MlflowException, match="fixed"):
        rq.update_review_queue(mine.queue_id, name="x")

    # A deleted trace leaves every queue.
    mlflow.MlflowClient().delete_traces(exp, trace_ids=[ids[0]])
    assert [i.item_id for i in rq.list_review_queue_items(team.queue_id)] == [ids[1]]
    rq.delete_review_queue(team.queue_id)
    with pytest.raises(MlflowException, match="not found"):
        rq.get_review_queue(team.queue_id)


# ---------------------------------------------------------------------------------------------------------------------
# 2. Side by side with MLflow


TR = ["tr-%032x" % (0xA0 + i) for i in range(5)]


def scenario(s, tally):
    """The requests, to either server."""
    e = s("experiment", "POST", API + "/experiments/create", json={"name": "review"})["experiment_id"]
    e2 = s("experiment 2", "POST", API + "/experiments/create", json={"name": "review-2"})["experiment_id"]
    for i, t in enumerate(TR[:4]):
        trace(s, f"trace {i}", t, e)
    trace(s, "a trace elsewhere", TR[4], e2)

    def create(step, name, type_="FEEDBACK", input_=None, exp=None, **more):
        body = {"experiment_id": exp or e, "name": name, "type": type_, "input": {"text": {}} if input_ is None else input_, **more}
        return s(step, "POST", LS + "/create", json=body).get("label_schema", {})

    q1 = create("pass/fail", "q1", input_={"pass_fail": {"positive_label": "y", "negative_label": "n"}}, instruction="Look é", enable_comment=True)
    q2 = create("categorical", "q2", "EXPECTATION", {"categorical": {"options": ["a", "b"], "multi_select": True}})
    create("numeric", "q3", input_={"numeric": {"min_value": 1, "max_value": 5.5}})
    create("numeric, unbounded above, NaN below", "q4", input_={"numeric": {"min_value": "NaN"}})
    create("numeric, -Infinity and 1e300", "q5", input_={"numeric": {"min_value": "-Infinity", "max_value": 1e300}})
    create("text with a length", "q6", input_={"text": {"max_length": 12}})
    create("type by number", "q7", 2)
    create("in the second experiment", "q1", exp=e2)
    create("no input", "x", input_={})
    create("an unknown input", "x", input_={"bogus": {}})
    create("no type", "x", None)
    create("an unknown type name", "x", "BOGUS")
    create("a taken name", "q1")
    create("the reserved name", " FEEDBACK ")
    create("a name of 251", "x" * 251)
    create("a name of 250", "y" * 250)
    create("an instruction of 1001", "x", instruction="i" * 1001)
    create("repeated options", "x", input_={"categorical": {"options": ["a", "a"]}})
    create("no options", "x", input_={"categorical": {"options": []}})
    create("11 options", "x", input_={"categorical": {"options": [str(i) for i in range(11)]}})
    create("an option of 65", "x", input_={"categorical": {"options": ["o" * 65]}})
    create("min above max", "x", input_={"numeric": {"min_value": 3, "max_value": 2}})
    create("min equal to max", "x", input_={"numeric": {"min_value": 2, "max_value": 2}})
    create("a missing label", "x", input_={"pass_fail": {"positive_label": "a"}})
    create("the same labels", "x", input_={"pass_fail": {"positive_label": "a'b", "negative_label": "a'b"}})
    create("a label of 65", "x", input_={"pass_fail": {"positive_label": "l" * 65, "negative_label": "n"}})
    create("a max length of 0", "x", input_={"text": {"max_length": 0}})
    create("a max length past int32", "q8", input_={"text": {"max_length": 3_000_000_000}})
    create("an option with an ideographic space", "x", input_={"categorical": {"options": ["a\u3000b", "a\u3000b"]}})
    create("an unknown experiment", "x", exp="999999")
    create("a bad experiment id", "x", exp="abc")
    create("an empty name", "")
    s("no experiment", "POST", LS + "/create", json={"name": "x", "type": "FEEDBACK", "input": {"text": {}}})
    s("a name that is a number", "POST", LS + "/create", json={"experiment_id": e, "name": 7, "type": "FEEDBACK", "input": {"text": {}}})
    s("list", "GET", LS + "/list", params={"experiment_id": e})
    page = s("list 3", "GET", LS + "/list", params={"experiment_id": e, "max_results": 3})
    s("list the next 3", "GET", LS + "/list", params={"experiment_id": e, "max_results": 3, "page_token": page.get("next_page_token")})
    s("list 0", "GET", LS + "/list", params={"experiment_id": e, "max_results": 0})
    s("list 50001", "GET", LS + "/list", params={"experiment_id": e, "max_results": 50001})
    s("list a bad token", "GET", LS + "/list", params={"experiment_id": e, "page_token": "garbage"})
    s("list an unknown experiment", "GET", LS + "/list", params={"experiment_id": "999999"})
    s("list without an experiment", "GET", LS + "/list")
    default = next((x for x in s("list again", "GET", LS + "/list", params={"experiment_id": e}).get("label_schemas", []) if x.get("is_default")), {})
    s("get", "GET", LS + "/get", params={"schema_id": q1.get("schema_id")})
    s("get none", "GET", LS + "/get", params={"schema_id": "ls-nope"})
    s("get by name", "GET", LS + "/get-by-name", params={"experiment_id": e, "name": "q2"})
    s("get by name, other case", "GET", LS + "/get-by-name", params={"experiment_id": e, "name": "Q2"})
    s("get by name in an unknown experiment", "GET", LS + "/get-by-name", params={"experiment_id": "999999", "name": "q2"})
    upd = lambda step, body: s(step, "PATCH", LS + "/update", json=body)
    upd("rename and re-option", {"schema_id": q2.get("schema_id"), "name": "q2b", "input": {"categorical": {"options": ["c"], "multi_select": True}}})
    upd("instruction and comments", {"schema_id": q1.get("schema_id"), "instruction": "new", "enable_comment": False})
    upd("change the kind", {"schema_id": q2.get("schema_id"), "input": {"text": {}}})
    upd("change multi_select", {"schema_id": q2.get("schema_id"), "input": {"categorical": {"options": ["c"]}}})
    upd("rename onto another", {"schema_id": q2.get("schema_id"), "name": "q1"})
    upd("rename to the reserved", {"schema_id": q2.get("schema_id"), "name": "feedback"})
    upd("nothing to change", {"schema_id": q1.get("schema_id")})
    upd("an unknown schema", {"schema_id": "ls-nope", "name": "z"})
    upd("the default", {"schema_id": default.get("schema_id"), "name": "z"})
    upd("no schema", {"name": "z"})
    s("delete the default", "DELETE", LS + "/delete", json={"schema_id": default.get("schema_id")})
    s("delete none", "DELETE", LS + "/delete", json={"schema_id": "ls-nope"})

    def queue(step, name, type_="CUSTOM", exp=None, **more):
        return s(step, "POST", RQ + "/create", json={"experiment_id": exp or e, "name": name, "queue_type": type_, **more}).get("review_queue", {})

    team = queue("custom", "Team Q", users=["Bob ", " alice\x1f", "bob"] * 500, schema_ids=[q1.get("schema_id"), q2.get("schema_id")] * 500)
    queue("the same name, other case", "team q")
    queue("a user queue", " Zed ", "USER")
    queue("a user queue with its user", "yan", "USER", users=["YAN"])
    queue("a user queue with another user", "uq", "USER", users=["a"])
    queue("a user queue with questions", "uq2", "USER", schema_ids=[q1.get("schema_id")])
    queue("no type", "x", None)
    queue("11 users", "x", users=[str(i) for i in range(11)])
    queue("a blank user", "x", users=[" "])
    queue("a blank name", "  ")
    queue("the reserved name", " Default ")
    queue("an unknown question", "x", schema_ids=["ls-nope"])
    queue("another experiment's question", "x", schema_ids=[q1.get("schema_id")], exp=e2)
    queue("an unknown experiment", "x", exp="999999")
    mine = s("user's own", "POST", RQ + "/get-or-create-user", json={"experiment_id": e, "user": "Carol"}).get("review_queue", {})
    s("user's own again", "POST", RQ + "/get-or-create-user", json={"experiment_id": e, "user": "carol "})
    s("a custom queue's name", "POST", RQ + "/get-or-create-user", json={"experiment_id": e, "user": "team q"})
    qid = team.get("queue_id")
    s("get", "GET", RQ + "/get", params={"queue_id": qid})
    s("get none", "GET", RQ + "/get", params={"queue_id": "rq-nope"})
    s("get by name", "GET", RQ + "/get-by-name", params={"experiment_id": e, "name": "TEAM Q"})
    s("get by name, none", "GET", RQ + "/get-by-name", params={"experiment_id": e, "name": "nope"})
    s("list", "GET", RQ + "/list", params={"experiment_id": e})
    s("list 2", "GET", RQ + "/list", params={"experiment_id": e, "max_results": 2})
    s("list alice's", "GET", RQ + "/list", params={"experiment_id": e, "user": " ALICE"})
    s("list an unknown experiment", "GET", RQ + "/list", params={"experiment_id": "999999"})
    s("list max_results abc", "GET", RQ + "/list", params={"experiment_id": e, "max_results": "abc"})
    add = lambda step, ids, q=None, **more: s(step, "POST", RQ + "/items/add", json={"queue_id": q or qid, "item_ids": ids, **more})
    add("add", [TR[0], " " + TR[1], TR[0]], item_type="TRACE")
    add("add again, and one more, an unknown kind", [TR[2], TR[0]], item_type="SPAN")
    add("add a trace elsewhere", [TR[4], TR[3]])
    add("add an unknown trace", ["tr-nope"])
    add("add none", [])
    add("add an id of 51", ["x" * 51])
    add("add to no queue", [TR[0]], "rq-nope")
    s("list holding a trace", "GET", RQ + "/list", params={"experiment_id": e, "item_id": TR[0]})
    s("items", "GET", RQ + "/items/list", params={"queue_id": qid})
    s("items, 2", "GET", RQ + "/items/list", params={"queue_id": qid, "max_results": 2})
    st = lambda step, item, status, q=None, **more: s(step, "POST", RQ + "/items/set-status",
                                                      json={"queue_id": q or qid, "item_id": item, "status": status, **more})
    st("complete", TR[0], "COMPLETE", completed_by=" Bob ")
    st("complete again by another", TR[0], "COMPLETE", completed_by="carol")
    st("decline", TR[0], "DECLINED", completed_by="carol")
    st("decline with no one", TR[1], "DECLINED")
    st("reopen naming someone", TR[0], "PENDING", completed_by="x")
    st("an unknown status", TR[0], "BOGUS")
    st("an item not there", TR[3], "COMPLETE", completed_by="bob")
    st("no queue", TR[0], "COMPLETE", "rq-nope", completed_by="bob")
    s("items declined", "GET", RQ + "/items/list", params={"queue_id": qid, "status": "DECLINED"})
    s("items declined, by number", "GET", RQ + "/items/list", params={"queue_id": qid, "status": "3"})
    st("reopen", TR[0], "PENDING")
    s("items pending", "GET", RQ + "/items/list", params={"queue_id": qid, "status": "PENDING"})
    s("items of no queue", "GET", RQ + "/items/list", params={"queue_id": "rq-nope"})
    up = lambda step, body: s(step, "POST", RQ + "/update", json={"queue_id": qid, **body})
    up("questions while it holds items", {"update_schema_ids": True, "schema_ids": []})
    up("rename, users, owner", {"name": "Renamed", "update_users": True, "users": ["dan"], "new_owner": " Eve "})
    up("rename onto another, other case", {"name": "ZED"})
    up("rename to default", {"name": "default"})
    up("a blank owner", {"new_owner": "  "})
    up("nothing", {})
    s("update a user queue", "POST", RQ + "/update", json={"queue_id": mine.get("queue_id"), "name": "R"})
    s("update no queue", "POST", RQ + "/update", json={"queue_id": "rq-nope", "name": "R"})
    s("remove", "POST", RQ + "/items/remove", json={"queue_id": qid, "item_ids": [TR[1], "tr-never"]})
    s("remove none", "POST", RQ + "/items/remove", json={"queue_id": qid, "item_ids": []})
    s("remove from no queue", "POST", RQ + "/items/remove", json={"queue_id": "rq-nope", "item_ids": ["x"]})
    s("delete a trace", "POST", API + "/traces/delete-traces", json={"experiment_id": e, "request_ids": [TR[0]]})
    s("items after the trace went", "GET", RQ + "/items/list", params={"queue_id": qid})
    up("questions once empty", {"update_schema_ids": True, "schema_ids": [q1.get("schema_id")]})
    s("delete a question a queue asks", "DELETE", LS + "/delete", json={"schema_id": q1.get("schema_id")})
    s("the queue keeps its id", "GET", RQ + "/get", params={"queue_id": qid})
    s("delete", "POST", RQ + "/delete", json={"queue_id": qid})
    s("delete again", "POST", RQ + "/delete", json={"queue_id": qid})
    s("get the deleted", "GET", RQ + "/get", params={"queue_id": qid})
    s("list from the ajax-api", "GET", "/ajax-api/3.0/mlflow/review-queues/list", params={"experiment_id": e})
    s("delete experiment", "POST", API + "/experiments/delete", json={"experiment_id": e2})
    s("list questions of a deleted experiment", "GET", LS + "/list", params={"experiment_id": e2})
    s("list queues of a deleted experiment", "GET", RQ + "/list", params={"experiment_id": e2})
    create("a question in a deleted experiment", "z", exp=e2)
    return [e, e2]


class Tokens:
    """Reduces an answer to what the other server's must equal: schema and queue ids in order of appearance, times,
    the scenario's experiment ids, page tokens kept; objects as lists of pairs, so key order counts at every depth."""

    def __init__(self, exps):
        self.exps, self.ids = {str(x): f"<E{i}>" for i, x in enumerate(exps, 1)}, {}

    def value(self, v, key=None):
        if isinstance(v, dict):
            return [(k, self.value(x, k)) for k, x in v.items()]
        if isinstance(v, list) and key == "schema_ids":  # sorted by id, which is random: the same set is enough
            return sorted(self.value(x, key) for x in v)
        if isinstance(v, list):
            return [self.value(x, key) for x in v]
        if isinstance(v, str) and (v.startswith("ls-") or v.startswith("rq-")) and len(v) == 35:
            return self.ids.setdefault(v, f"<ID{len(self.ids) + 1}>")
        if key in ("created_at", "last_updated_at", "creation_time_ms", "last_update_time_ms", "completed_time_ms"):
            return "<" + key + ">"
        if key == "experiment_id":
            return self.exps.get(str(v), v)
        return v


def reduced(steps, exps):
    """The steps with the ids and experiment ids error messages name made tokens, in order of appearance."""
    ids, out = {}, []
    for step, status, body in steps:
        if status >= 400 and isinstance(body, dict) and isinstance(body.get("message"), str):
            m = re.sub(r"(ls|rq)-[0-9a-f]{32}", lambda x: ids.setdefault(x.group(0), f"<ID{len(ids) + 1}>"), body["message"])
            for i, x in enumerate(exps, 1):
                m = m.replace(f"'{x}'", f"'<E{i}>'").replace(f"id={x} ", f"id=<E{i}> ")
            body = {**body, "message": m}
        out.append((step, status, body))
    return out


def test_answers_match_mlflow(oracles):
    oracle = oracles["plain"].get()
    tally = Server()
    try:
        theirs, ours = Session(oracle.url), Session(tally.url)
        their_exps, our_exps = scenario(theirs, False), scenario(ours, True)
        t, o = Tokens(their_exps), Tokens(our_exps)
        problems, notes = compare_steps(reduced(theirs.steps, their_exps), reduced(ours.steps, our_exps), t, o)
        print("\n".join(["messages that differ from MLflow's:"] + notes))
        assert not problems, "\n".join(problems)
        assert [n.split(":")[0] for n in notes] == ON_PURPOSE_MESSAGES, notes
        assert tally.proc.poll() is None
    finally:
        tally.stop()


# Messages Tally words otherwise: a mistyped field is named (MLflow's proto parser drops a name that is a number only
# after its own schema check, with this same message, so none is expected here).
ON_PURPOSE_MESSAGES = []


# ---------------------------------------------------------------------------------------------------------------------
# 3. MLflow's auth app


def acl_scenario(s, tally):
    """Permissions of label schemas and review queues, the same requests to either server."""
    e = s("experiment", "POST", API + "/experiments/create", json={"name": "review-acl"})["experiment_id"]
    trace(s, "a trace", TR[0], e)
    trace(s, "another trace", TR[1], e)
    alice, bob, carol, dave, erin = acl_users(s, e, {"alice": "READ", "bob": "EDIT", "carol": "MANAGE", "dave": "DENY", "erin": "EDIT"})

    def schema(step, who, name):
        return s(step, "POST", LS + "/create", auth=who, json={"experiment_id": e, "name": name, "type": "FEEDBACK", "input": {"text": {}}})

    schema("bob creates a question", bob, "b")
    sid = schema("carol creates a question", carol, "c").get("label_schema", {}).get("schema_id")
    for who in (alice, dave):
        s(f"{who[0]} lists questions", "GET", LS + "/list", auth=who, params={"experiment_id": e})
        s(f"{who[0]} gets one", "GET", LS + "/get", auth=who, params={"schema_id": sid})
        s(f"{who[0]} gets one by name", "GET", LS + "/get-by-name", auth=who, params={"experiment_id": e, "name": "c"})
    s("bob edits one", "PATCH", LS + "/update", auth=bob, json={"schema_id": sid, "instruction": "x"})
    s("carol edits one", "PATCH", LS + "/update", auth=carol, json={"schema_id": sid, "instruction": "x"})
    s("bob deletes an unknown one", "DELETE", LS + "/delete", auth=bob, json={"schema_id": "ls-nope"})

    def queue(step, who, name, **more):
        return s(step, "POST", RQ + "/create", auth=who, json={"experiment_id": e, "name": name, "queue_type": "CUSTOM", **more}).get("review_queue", {})

    queue("alice makes a queue", alice, "qa")
    bq = queue("bob makes a queue with alice in it", bob, "qb", users=["alice"]).get("queue_id")
    cq = queue("carol makes a queue", carol, "qc", users=["erin"]).get("queue_id")
    queue("bob names a queue after erin", bob, "Erin")
    s("alice gets her own queue", "POST", RQ + "/get-or-create-user", auth=alice, json={"experiment_id": e, "user": "alice"})
    s("bob gets his own queue", "POST", RQ + "/get-or-create-user", auth=bob, json={"experiment_id": e, "user": "bob"})
    for who in (alice, bob, carol, dave, erin):
        s(f"{who[0]} views bob's", "GET", RQ + "/get", auth=who, params={"queue_id": bq})
        s(f"{who[0]} views carol's", "GET", RQ + "/get", auth=who, params={"queue_id": cq})
        s(f"{who[0]} views carol's by name", "GET", RQ + "/get-by-name", auth=who, params={"experiment_id": e, "name": "qc"})
        s(f"{who[0]} lists queues", "GET", RQ + "/list", auth=who, params={"experiment_id": e})
        s(f"{who[0]} lists carol's items", "GET", RQ + "/items/list", auth=who, params={"queue_id": cq})
    s("alice adds to carol's", "POST", RQ + "/items/add", auth=alice, json={"queue_id": cq, "item_ids": [TR[0]]})
    s("bob adds to carol's", "POST", RQ + "/items/add", auth=bob, json={"queue_id": cq, "item_ids": [TR[0], TR[1]]})
    s("bob adds to his", "POST", RQ + "/items/add", auth=bob, json={"queue_id": bq, "item_ids": [TR[0]]})
    for who in (alice, bob, carol, erin):
        s(f"{who[0]} completes in carol's", "POST", RQ + "/items/set-status", auth=who,
          json={"queue_id": cq, "item_id": TR[0], "status": "COMPLETE", "completed_by": "somebody"})
    s("alice completes in bob's", "POST", RQ + "/items/set-status", auth=alice,
      json={"queue_id": bq, "item_id": TR[0], "status": "COMPLETE"})
    s("carol's items, who completed", "GET", RQ + "/items/list", auth=carol, params={"queue_id": cq})
    s("bob renames carol's", "POST", RQ + "/update", auth=bob, json={"queue_id": cq, "name": "x"})
    s("bob renames his", "POST", RQ + "/update", auth=bob, json={"queue_id": bq, "name": "qb2"})
    s("bob renames his after erin", "POST", RQ + "/update", auth=bob, json={"queue_id": bq, "name": "erin"})
    s("bob gives his away", "POST", RQ + "/update", auth=bob, json={"queue_id": bq, "new_owner": "erin"})
    s("carol gives bob's away", "POST", RQ + "/update", auth=carol, json={"queue_id": bq, "new_owner": "erin"})
    s("bob removes from his, now erin's", "POST", RQ + "/items/remove", auth=bob, json={"queue_id": bq, "item_ids": [TR[0]]})
    s("erin removes from hers", "POST", RQ + "/items/remove", auth=erin, json={"queue_id": bq, "item_ids": [TR[0]]})
    s("bob deletes carol's", "POST", RQ + "/delete", auth=bob, json={"queue_id": cq})
    s("erin deletes hers", "POST", RQ + "/delete", auth=erin, json={"queue_id": bq})
    s("bob deletes an unknown queue", "POST", RQ + "/delete", auth=bob, json={"queue_id": "rq-nope"})
    s("carol deletes hers", "POST", RQ + "/delete", auth=carol, json={"queue_id": cq})
    s("deny bob every queue", "POST", V3 + "/users/permissions/grant",
      json={"username": "bob", "resource_type": "review_queue", "resource_id": "*", "permission": "DENY"})
    queue("bob makes a queue, denied", bob, "qd")
    s("bob lists queues, denied", "GET", RQ + "/list", auth=bob, params={"experiment_id": e})
    s("bob deletes a question", "DELETE", LS + "/delete", auth=bob, json={"schema_id": sid})
    s("carol deletes a question", "DELETE", LS + "/delete", auth=carol, json={"schema_id": sid})
    s("anonymous lists", "GET", RQ + "/list", auth=None, params={"experiment_id": e})
    return [e]


def test_permissions_under_basic_auth(oracles):
    oracle = oracles["auth"].get()
    tally = Server("--auth", "basic", env={"MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD})
    theirs, ours = Session(oracle.url, auth=ADMIN), Session(tally.url, auth=ADMIN)
    try:
        acl_scenario(theirs, False)
        acl_scenario(ours, True)
        problems = status_problems(theirs, ours)
        # What the listings and views show each user, where both answered.
        names = lambda b: sorted(str((q.get("name"), q.get("created_by"), q.get("item_id"), q.get("completed_by")))
                                 for q in b.get("review_queues", b.get("items", [b.get("review_queue", {})])))
        for (step, s1, b1), (_, s2, b2) in zip(theirs.steps, ours.steps):
            if s1 == s2 == 200 and step.endswith(("lists queues", "who completed", "views carol's")) and names(b1) != names(b2):
                problems.append(f"{step}: mlflow {names(b1)}, tally {names(b2)}")
        assert not problems, "\n".join(problems)
        refused = {step for step, status, _ in ours.steps if status == 403}
        assert {"alice makes a queue", "dave views bob's", "alice views carol's", "bob renames carol's", "bob gives his away",
                "alice completes in carol's", "bob deletes carol's", "bob makes a queue, denied"} <= refused, refused
        assert tally.proc.poll() is None
    finally:
        tally.stop()
