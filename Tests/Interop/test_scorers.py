"""MLflow 3's registered scorers (`mlflow.genai.scorers`, `/api/3.0/mlflow/scorers/…`) through the unmodified client:
`make_judge(...).register`, built-in scorers registered under names, versions, `list_scorers`, `get_scorer` (the
highest version and a given one), `delete_scorer` (a version, then all), `stop()` (online scoring off) and `start()`
(refused: Tally runs no scorers), a `@scorer` with code refused as MLflow's server refuses it, with no warning.

Side by side with a real `mlflow server` (3.17, SQLite, from the venv): the same raw requests to both (registrations,
definitions MLflow's server refuses, listings by one experiment, by several and by none, versions, gets, deletes,
online-scoring settings, a deleted experiment), the answers compared once scorer ids, clocks and experiment ids are
reduced to tokens: the same status, error_code and body, key order included. Then MLflow's auth app: the same requests
as its users to `mlflow server --app-name basic-auth` and to Tally, the same statuses (where Tally differs on purpose,
its own answers)."""
import json

import pytest
import mlflow

from conftest import ORACLE_ADMIN_PASSWORD as ADMIN_PASSWORD, RawSession as Session, Server, acl_users, compare_steps, status_problems, module_server

V3 = "/api/3.0/mlflow"
SC = V3 + "/scorers"
API = "/api/2.0/mlflow"
ADMIN = ("admin", ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def local():
    yield from module_server()


# ---------------------------------------------------------------------------------------------------------------------
# 1. The client


def test_scorers_through_the_client(local, no_warnings):
    from mlflow.exceptions import MlflowException
    from mlflow.genai.judges import make_judge
    from mlflow.genai.scorers import Guidelines, Safety, delete_scorer, get_scorer, list_scorers, scorer

    exp = mlflow.set_experiment("scorers-client").experiment_id
    judge = make_judge(name="tone", instructions="Is {{ outputs }} polite?", model="openai:/gpt-4o-mini", feedback_value_type=bool)
    first = judge.register(name="tone")
    assert first.name == "tone" and first.registered_version == 1 if hasattr(first, "registered_version") else True
    Safety().register(name="safety")
    Guidelines(name="kind", guidelines=["be kind"]).register()
    make_judge(name="tone", instructions="Is {{ outputs }} very polite?", model="openai:/gpt-4o", feedback_value_type=bool).register(name="tone")

    listed = list_scorers()
    assert [s.name for s in listed] == ["kind", "safety", "tone"]
    assert get_scorer(name="tone").instructions == "Is {{ outputs }} very polite?"
    assert get_scorer(name="tone", version=1).instructions == "Is {{ outputs }} polite?"
    assert get_scorer(name="tone").model == "openai:/gpt-4o"
    assert type(get_scorer(name="safety")).__name__ == "Safety"
    assert get_scorer(name="kind").guidelines == ["be kind"]

    from mlflow.genai.scorers.registry import _get_scorer_store
    versions = _get_scorer_store().list_scorer_versions(exp, "tone")
    assert [v for _, v in versions] == [1, 2]

    # Online scoring: off is kept (stop), on is refused with MLflow's message (no gateway model; Tally runs none).
    stopped = get_scorer(name="safety").stop()
    assert stopped.sample_rate == 0.0
    assert get_scorer(name="safety").sample_rate == 0.0
    with pytest.raises(MlflowException, match="does not use a gateway model"):
        from mlflow.genai.scorers import ScorerSamplingConfig
        get_scorer(name="safety").start(sampling_config=ScorerSamplingConfig(sample_rate=0.5))

    # A scorer with code is refused by the server, as MLflow's is by default.
    @scorer
    def mine(outputs):
        return True

    with pytest.raises(MlflowException, match="Custom scorer registration"):
        mine.register(name="mine")

    delete_scorer(name="tone", version=1)
    assert [v for _, v in _get_scorer_store().list_scorer_versions(exp, "tone")] == [2]
    delete_scorer(name="safety", version="all")
    assert [s.name for s in list_scorers()] == ["kind", "tone"]
    with pytest.raises(MlflowException, match="not found"):
        get_scorer(name="safety")
    # Another experiment's scorers are its own.
    other = mlflow.set_experiment("scorers-client-other").experiment_id
    assert list_scorers() == []
    Safety().register(name="tone")
    assert type(get_scorer(name="tone")).__name__ == "Safety"
    assert [s.name for s in list_scorers(experiment_id=exp)] == ["kind", "tone"] and other != exp


def test_scorers_with_code_where_the_operator_allows_them(local, monkeypatch):
    """`tally server --enable-custom-scorers` (MLflow's MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS): a `@scorer` is kept, and
    a client that allows it too (the same variable, as MLflow's client asks) loads it and runs it."""
    from mlflow.genai.scorers import get_scorer, scorer

    s = Server("--enable-custom-scorers")
    previous = mlflow.get_tracking_uri()
    try:
        monkeypatch.setenv("MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS", "true")
        mlflow.set_tracking_uri(s.url)
        mlflow.set_experiment("custom")

        @scorer
        def exact(outputs, expectations):
            return outputs == expectations["answer"]

        exact.register(name="exact")
        loaded = get_scorer(name="exact")
        assert loaded(outputs="a", expectations={"answer": "a"}) is True
        assert loaded(outputs="a", expectations={"answer": "b"}) is False
        assert s.proc.poll() is None
    finally:
        mlflow.set_tracking_uri(previous)
        s.stop()


# ---------------------------------------------------------------------------------------------------------------------
# 2. Side by side with MLflow


SAFETY = json.dumps({"name": "x", "builtin_scorer_class": "Safety", "builtin_scorer_pydantic_data": {"name": "x", "model": None},
                     "call_source": None})
JUDGE = json.dumps({"name": "j", "instructions_judge_pydantic_data": {"instructions": "{{ outputs }} é ok?", "model": "openai:/gpt-4o"}})


def scenario(s, tally):
    """The requests, to either server; Tally's own answers to what MLflow answers 500 to are steps marked `tally:`."""
    e = s("experiment", "POST", API + "/experiments/create", json={"name": "scorers"})["experiment_id"]
    e2 = s("experiment 2", "POST", API + "/experiments/create", json={"name": "scorers-2"})["experiment_id"]

    def reg(step, name, ser, exp=None):
        return s(step, "POST", SC + "/register", json={"experiment_id": exp or e, "name": name, "serialized_scorer": ser})

    sid = reg("register", "x", SAFETY).get("scorer_id")
    reg("a second version, spaced and with 2.50", "x", '{"a":  1,"b":[1,2.50], "u": "\\u00e9"}')
    reg("a judge", "j", JUDGE)
    reg("in the second experiment", "x", SAFETY, e2)
    reg("a name with a slash", "a/b c", "{}")
    reg("whitespace name", "  ", "{}")
    reg("empty name", "", "{}")
    reg("not JSON", "y", "not json")
    reg("a model that is a number", "y", '{"instructions_judge_pydantic_data": {"model": 5}}')
    reg("a blank model", "y", '{"builtin_scorer_pydantic_data": {"model": " "}}')
    reg("a gateway model", "y", '{"instructions_judge_pydantic_data": {"model": "gateway:/nope"}}')
    reg("a gateway model, slashes", "y", '{"third_party_scorer_data": {"model": "gateway:///nope"}}')
    reg("a model named gateway", "y", '{"instructions_judge_pydantic_data": {"model": "gateway"}}')
    reg("a memory judge's base model", "m", '{"memory_augmented_judge_data": {"base_judge": {"instructions_judge_pydantic_data": {"model": 1.5}}}}')
    reg("code in an ensemble", "y", '{"ensemble_scorer_data": {"scorers": [{"call_source": "x"}]}}')
    reg("a null call_source", "n", '{"call_source": null, "z": [{"call_source": null}]}')
    reg("a destination option, deep", "y", '{"third_party_scorer_data": {"kwargs": {"a": {"api_base": 1, "fallbacks": []}}}}')
    reg("a destination option in pairs", "y", '{"x": {"third_party_scorer_data": {"kwargs": {"o": [["base_url", "h"]]}}}}')
    reg("options that are a list", "y", '{"third_party_scorer_data": {"kwargs": [1]}}')
    reg("an unknown experiment", "y", "{}", "999999")
    reg("a bad experiment id", "y", "{}", "abc")
    s("no experiment", "POST", SC + "/register", json={"name": "y", "serialized_scorer": "{}"})
    s("a definition that is a number", "POST", SC + "/register", json={"experiment_id": e, "name": "y", "serialized_scorer": 5})
    if tally:
        reg("tally: a definition that is a list", "y", "[1]")
    s("list", "GET", SC + "/list", params={"experiment_id": e})
    s("list by experiment_ids", "GET", SC + "/list", params={"experiment_ids": [e2, "999999", e]})
    s("list by both", "GET", SC + "/list", params={"experiment_id": e, "experiment_ids": [e]})
    s("list by a bad id", "GET", SC + "/list", params={"experiment_ids": ["abc"]})
    s("list an unknown experiment", "GET", SC + "/list", params={"experiment_id": "999999"})
    s("list with POST", "POST", SC + "/list", json={"experiment_id": e})
    s("versions", "GET", SC + "/versions", params={"experiment_id": e, "name": "x"})
    s("versions of none", "GET", SC + "/versions", params={"experiment_id": e, "name": "zz"})
    s("versions without a name", "GET", SC + "/versions", params={"experiment_id": e})
    s("get", "GET", SC + "/get", params={"experiment_id": e, "name": "x"})
    s("get version 1", "GET", SC + "/get", params={"experiment_id": e, "name": "x", "version": 1})
    s("get version 7", "GET", SC + "/get", params={"experiment_id": e, "name": "x", "version": 7})
    s("get version abc", "GET", SC + "/get", params={"experiment_id": e, "name": "x", "version": "abc"})
    s("get none", "GET", SC + "/get", params={"experiment_id": e, "name": "zz"})
    s("get the slashed name", "GET", SC + "/get", params={"experiment_id": e, "name": "a/b c"})
    s("configs of none", "GET", SC + "/online-configs", params={"scorer_ids": [sid]})
    s("configs without ids", "GET", SC + "/online-configs")
    put = lambda step, body: s(step, "PUT", SC + "/online-config", json={"experiment_id": e, "name": "x", **body})
    put("turn on", {"sample_rate": 0.5})
    put("turn off", {"sample_rate": 0})
    put("off, with a filter, the rate a string", {"sample_rate": "0", "filter_string": "tags.a = 'b'"})
    put("a bad filter", {"sample_rate": 0, "filter_string": "bogus"})
    put("a rate of 2", {"sample_rate": 2})
    put("a rate of -0.5", {"sample_rate": -0.5})
    put("a filter that is a number", {"sample_rate": 0, "filter_string": 5})
    put("no rate", {})
    put("an unknown scorer", {"name": "nope", "sample_rate": 0})
    s("configs", "GET", SC + "/online-configs", params={"scorer_ids": [sid, "nope"]})
    s("configs from the ajax-api", "GET", "/ajax-api/3.0/mlflow/scorers/online-configs", params={"scorer_ids": [sid]})
    s("delete version 1", "DELETE", SC + "/delete", json={"experiment_id": e, "name": "x", "version": 1})
    s("versions after", "GET", SC + "/versions", params={"experiment_id": e, "name": "x"})
    s("delete version 1 again", "DELETE", SC + "/delete", json={"experiment_id": e, "name": "x", "version": 1})
    s("delete version 2", "DELETE", SC + "/delete", json={"experiment_id": e, "name": "x", "version": 2})
    s("versions of one with none", "GET", SC + "/versions", params={"experiment_id": e, "name": "x"})
    s("get one with none", "GET", SC + "/get", params={"experiment_id": e, "name": "x"})
    s("get version 3 of one with none", "GET", SC + "/get", params={"experiment_id": e, "name": "x", "version": 3})
    s("delete version 3 of one with none", "DELETE", SC + "/delete", json={"experiment_id": e, "name": "x", "version": 3})
    s("delete version 3 of none", "DELETE", SC + "/delete", json={"experiment_id": e, "name": "zz", "version": 3})
    s("list without it", "GET", SC + "/list", params={"experiment_id": e})
    s("its config stays", "GET", SC + "/online-configs", params={"scorer_ids": [sid]})
    reg("register it again: version 1", "x", "{}")
    s("delete all", "DELETE", SC + "/delete", json={"experiment_id": e, "name": "x"})
    s("delete all again", "DELETE", SC + "/delete", json={"experiment_id": e, "name": "x"})
    s("its config went with it", "GET", SC + "/online-configs", params={"scorer_ids": [sid]})
    s("delete the second's", "DELETE", SC + "/delete", json={"experiment_id": e2, "name": "x", "version": 1})
    s("delete experiment", "POST", API + "/experiments/delete", json={"experiment_id": e})
    s("list a deleted experiment", "GET", SC + "/list", params={"experiment_id": e})
    s("get in a deleted experiment", "GET", SC + "/get", params={"experiment_id": e, "name": "a/b c"})
    reg("register in a deleted experiment", "z", "{}")
    s("list everywhere", "GET", SC + "/list")
    s("list the deleted by experiment_ids", "GET", SC + "/list", params={"experiment_ids": [e]})
    return [e, e2]


class Tokens:
    """Reduces an answer to what the other server's must equal: scorer ids in order of appearance, times, config ids
    and the scenario's experiment ids as tokens."""

    def __init__(self, exps):
        self.exps, self.ids = {str(x): f"<E{i}>" for i, x in enumerate(exps, 1)}, {}

    def value(self, v, key=None):
        if isinstance(v, dict):
            return {k: self.value(x, k) for k, x in v.items()}
        if isinstance(v, list):
            return [self.value(x, key) for x in v]
        if key == "scorer_id":
            return self.ids.setdefault(v, f"<S{len(self.ids) + 1}>")
        if key in ("creation_time", "online_scoring_config_id"):
            return "<" + key + ">"
        if key == "experiment_id":
            return self.exps.get(str(v), v) if isinstance(v, str) else ("int", self.exps.get(str(v), v))
        return v


def test_answers_match_mlflow(oracles):
    oracle = oracles["plain"].get()
    tally = Server()
    try:
        theirs, ours = Session(oracle.url), Session(tally.url)
        their_exps, our_exps = scenario(theirs, False), scenario(ours, True)
        mine = {step: (status, body) for step, status, body in ours.steps if step.startswith("tally:")}
        assert mine["tally: a definition that is a list"][0] == 400, mine  # MLflow: 500
        ours.steps = [x for x in ours.steps if not x[0].startswith("tally:")]
        problems, notes = compare_steps(theirs.steps, ours.steps, Tokens(their_exps), Tokens(our_exps))
        print("\n".join(["messages that differ from MLflow's:"] + notes))
        assert not problems, "\n".join(problems)
        # MLflow's messages too, but for a filter its trace grammar words otherwise.
        assert [n.split(":")[0] for n in notes] == ["a bad filter"], notes
        assert tally.proc.poll() is None
    finally:
        tally.stop()


# ---------------------------------------------------------------------------------------------------------------------
# 3. MLflow's auth app


def acl_scenario(s, tally):
    """Permissions of scorers, the same requests to either server; steps marked `tally:` go to Tally only."""
    e1 = s("experiment", "POST", API + "/experiments/create", json={"name": "scorers-acl"})["experiment_id"]
    alice, bob, carol, dave = acl_users(s, e1, {"alice": "READ", "bob": "EDIT", "carol": "MANAGE", "dave": "DENY"})

    def reg(step, who, name="x"):
        return s(step, "POST", SC + "/register", auth=who, json={"experiment_id": e1, "name": name, "serialized_scorer": "{}"})

    reg("alice registers", alice)
    reg("bob registers", bob)
    reg("bob registers again", bob)
    reg("carol registers hers", carol, "c")
    reg("dave registers", dave)
    for who in (alice, bob, dave):
        s(f"{who[0]} gets bob's", "GET", SC + "/get", auth=who, params={"experiment_id": e1, "name": "x"})
        s(f"{who[0]} lists the experiment", "GET", SC + "/list", auth=who, params={"experiment_id": e1})
        s(f"{who[0]} lists its versions", "GET", SC + "/versions", auth=who, params={"experiment_id": e1, "name": "x"})
    s("anonymous gets it", "GET", SC + "/get", auth=None, params={"experiment_id": e1, "name": "x"})
    s("alice deletes a version of bob's", "DELETE", SC + "/delete", auth=alice, json={"experiment_id": e1, "name": "x", "version": 1})
    s("carol deletes a version of bob's", "DELETE", SC + "/delete", auth=carol, json={"experiment_id": e1, "name": "x", "version": 1})
    s("alice turns bob's off", "PUT", SC + "/online-config", auth=alice, json={"experiment_id": e1, "name": "x", "sample_rate": 0})
    sid = s("bob turns his off", "PUT", SC + "/online-config", auth=bob, json={"experiment_id": e1, "name": "x", "sample_rate": 0}).get("config", {}).get("scorer_id")
    s("alice reads its settings", "GET", SC + "/online-configs", auth=alice, params={"scorer_ids": [sid]})
    s("dave reads its settings", "GET", SC + "/online-configs", auth=dave, params={"scorer_ids": [sid]})
    # A grant on the scorer itself: DENY closes it to alice, MANAGE opens carol's delete of all to bob.
    s("deny alice bob's", "POST", V3 + "/users/permissions/grant",
      json={"username": "alice", "resource_type": "scorer", "resource_id": f"{e1}/x", "permission": "DENY"})
    s("alice gets bob's, denied", "GET", SC + "/get", auth=alice, params={"experiment_id": e1, "name": "x"})
    s("alice gets carol's", "GET", SC + "/get", auth=alice, params={"experiment_id": e1, "name": "c"})
    s("bob deletes carol's", "DELETE", SC + "/delete", auth=bob, json={"experiment_id": e1, "name": "c"})
    s("give bob carol's", "POST", V3 + "/users/permissions/grant",
      json={"username": "bob", "resource_type": "scorer", "resource_id": f"{e1}/c", "permission": "MANAGE"})
    s("bob deletes carol's, granted", "DELETE", SC + "/delete", auth=bob, json={"experiment_id": e1, "name": "c"})
    s("bob deletes his", "DELETE", SC + "/delete", auth=bob, json={"experiment_id": e1, "name": "x"})
    # A registrant's lower grant on the scorer is raised to MANAGE (MLflow's grant is an upsert).
    reg("carol registers w", carol, "w")
    s("give bob READ on w", "POST", V3 + "/users/permissions/grant",
      json={"username": "bob", "resource_type": "scorer", "resource_id": f"{e1}/w", "permission": "READ"})
    reg("bob registers w", bob, "w")
    s("bob deletes w, raised to MANAGE", "DELETE", SC + "/delete", auth=bob, json={"experiment_id": e1, "name": "w"})
    if tally:  # listings everywhere are filtered; MLflow's too, by its own rules
        s("tally: alice lists everywhere", "GET", SC + "/list", auth=alice)
        reg("tally: bob registers y", bob, "y")
        s("tally: dave lists everywhere", "GET", SC + "/list", auth=dave)
        s("tally: alice lists everywhere again", "GET", SC + "/list", auth=alice)
        s("tally: dave gets y", "GET", SC + "/get", auth=dave, params={"experiment_id": e1, "name": "y"})
    return [e1]


# Where Tally answers otherwise on purpose: (MLflow's status, Tally's). A scorer no grant names has its experiment's
# level in Tally (DENY on the experiment closes it; MANAGE on the experiment deletes its versions); MLflow's default.
ON_PURPOSE = {"dave gets bob's": (200, 403), "dave lists its versions": (200, 403), "carol deletes a version of bob's": (403, 200)}


def test_permissions_under_basic_auth(oracles):
    oracle = oracles["auth"].get()
    tally = Server("--auth", "basic", env={"MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD})
    theirs, ours = Session(oracle.url, auth=ADMIN), Session(tally.url, auth=ADMIN)
    try:
        acl_scenario(theirs, False)
        acl_scenario(ours, True)
        mine = {step: (status, body) for step, status, body in ours.steps if step.startswith("tally:")}
        names = lambda step: [x["scorer_name"] for x in mine[step][1].get("scorers", [])]
        assert names("tally: alice lists everywhere") == [] and names("tally: alice lists everywhere again") == ["y"]
        # DENY on the experiment: nothing of it, though MLflow would let dave get a scorer by name (its default level).
        assert names("tally: dave lists everywhere") == [] and mine["tally: dave gets y"][0] == 403
        ours.steps = [x for x in ours.steps if not x[0].startswith("tally:")]
        # ON_PURPOSE: without a grant on the scorer, MLflow takes the default level; Tally the experiment's.
        problems = status_problems(theirs, ours, ON_PURPOSE)
        assert not problems, "\n".join(problems)
        assert tally.proc.poll() is None
    finally:
        tally.stop()
