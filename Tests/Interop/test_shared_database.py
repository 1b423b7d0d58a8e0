"""Two `tally server`s on one PostgreSQL database, through the real mlflow client: what one writes, the other
serves at once (params, tags, run status, latest metrics, experiment renames, search), and a param logged through
both at once with different values is stored once, the other writer getting MLflow's error. Runs in the PostgreSQL
pass of `make test` (TALLY_INTEROP_BACKEND=postgres)."""
import threading

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus
from mlflow.exceptions import MlflowException

from conftest import POSTGRES, Server, server_database

pytestmark = pytest.mark.skipif(not POSTGRES, reason="needs the PostgreSQL pass (TALLY_INTEROP_BACKEND=postgres)")


@pytest.fixture(scope="module")
def pair():
    uri = server_database()
    servers = [Server("--backend-store-uri", uri), Server("--backend-store-uri", uri)]
    yield [MlflowClient(tracking_uri=s.url) for s in servers]
    for s in servers:
        assert s.proc.poll() is None, "a server died during the tests"
        s.stop()


def test_reads_through_the_other_server_are_never_stale(pair):
    a, b = pair
    exp = a.create_experiment("shared")
    assert b.get_experiment_by_name("shared").experiment_id == exp
    run = a.create_run(exp, run_name="r").info.run_id
    a.log_batch(run, metrics=[Metric("loss", 0.5, 1, 1)], params=[Param("lr", "0.1")])
    a.set_tag(run, "team", "x")
    got = b.get_run(run).data
    assert got.params == {"lr": "0.1"} and got.tags["team"] == "x" and got.metrics == {"loss": 0.5}
    b.log_metric(run, "loss", 0.25, timestamp=2, step=2)
    assert a.get_run(run).data.metrics == {"loss": 0.25}
    a.set_terminated(run, "FINISHED")
    assert b.get_run(run).info.status == RunStatus.to_string(RunStatus.FINISHED)
    assert [r.info.run_id for r in b.search_runs([exp], "metrics.loss < 0.3 and params.lr = '0.1' and tags.team = 'x'")] == [run]
    b.rename_experiment(exp, "renamed")
    assert a.get_experiment(exp).name == "renamed"
    assert a.get_experiment_by_name("shared") is None
    with pytest.raises(MlflowException, match="already exists"):
        b.create_experiment("renamed")


def test_one_param_two_values_through_two_servers(pair):
    a, b = pair
    exp = a.create_experiment("race")
    for _ in range(10):
        run = a.create_run(exp).info.run_id
        outcomes = []

        def log(client, value):
            try:
                client.log_param(run, "p", value)
                outcomes.append("ok " + value)
            except MlflowException as e:
                outcomes.append("refused" if "Changing param values is not allowed" in str(e) else str(e))

        threads = [threading.Thread(target=log, args=(c, v)) for c, v in ((a, "A"), (b, "B"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stored = b.get_run(run).data.params["p"]
        assert sorted(outcomes) == sorted(["ok " + stored, "refused"]), outcomes
