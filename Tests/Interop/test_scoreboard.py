"""The scoreboard API and `tally scoreboard` over runs logged by the real mlflow client: keys × runs, ranks, groups,
baseline deltas, selection by experiment + filter, and errors as MLflow JSON."""
import json
import subprocess

import requests
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from conftest import TALLY

KEYS = [f"suite{s}/task_{t:02d}/acc" for s in range(3) for t in range(40)] + ["eval/loss"]


def logged(server):
    c = MlflowClient()
    exp = c.create_experiment("scoreboard")
    runs = []
    for r in range(3):
        rid = c.create_run(exp, run_name=f"ckpt{r}").info.run_id
        metrics = [Metric(k, (i * 7 + r * 13) % 100 / 100 if "loss" not in k else 1.0 / (r + 1), 1000, 0) for i, k in enumerate(KEYS)]
        c.log_batch(rid, metrics=metrics, params=[Param("size", "small" if r < 2 else "large")])
        runs.append(rid)
    return exp, runs


def test_scoreboard_api_and_cli(server):
    exp, runs = logged(server)
    url = server.url + "/api/tally/v1/scoreboard"
    b = requests.post(url, json={"run_ids": runs, "key_prefixes": ["suite1/", "eval/"], "baseline_run_id": runs[0], "group_depth": 1}).json()
    assert [r["run_id"] for r in b["runs"]] == runs and b["baseline_run_id"] == runs[0]
    keys = [row["key"] for row in b["rows"]]
    assert keys == sorted(k for k in KEYS if k.startswith(("suite1/", "eval/")))
    loss = next(row for row in b["rows"] if row["key"] == "eval/loss")
    assert loss["lower_is_better"] and loss["values"] == [1.0, 0.5, 1.0 / 3] and loss["ranks"] == [3, 2, 1]
    assert loss["baseline_deltas"][0] == 0 and abs(loss["baseline_deltas"][2] - (1.0 / 3 - 1.0)) < 1e-12
    g = next(g for g in b["groups"] if g["group"] == "suite1")
    assert g["keys"] == 40 and g["counts"] == [40, 40, 40]
    rows = [row for row in b["rows"] if row["group"] == "suite1"]
    assert abs(g["means"][1] - sum(row["values"][1] for row in rows) / 40) < 1e-12
    # A group of one key carries no means or counts: its row's values are them.
    assert next(g for g in b["groups"] if g["group"] == "eval") == {"group": "eval", "keys": 1}
    # By experiment and filter, keys by regex.
    small = requests.post(url, json={"experiment_id": exp, "filter": "params.size = 'small'", "key_regex": "task_0[0-2]/"}).json()
    assert sorted(r["run_id"] for r in small["runs"]) == sorted(runs[:2]) and len(small["rows"]) == 9
    # Errors are MLflow JSON, 4xx.
    for body, fragment in [({"run_ids": runs, "baseline_run_id": "nope"}, "baseline_run_id"), ({"run_ids": []}, "run_ids must list"),
                           ({"run_ids": runs, "key_regex": "("}, "Invalid key_regex"), ({"run_ids": runs, "value": "max"}, "value must be")]:
        r = requests.post(url, json=body)
        assert r.status_code == 400 and fragment in r.json()["message"], (body, r.text)
    # The CLI: JSON is the API's answer; the table marks the best run of each row and shows group means; CSV has a
    # line per key.
    out = subprocess.run([TALLY, "scoreboard", "--server", server.url, *runs, "--keys", "eval/", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    assert [row["key"] for row in json.loads(out)["rows"]] == ["eval/loss"]
    table = subprocess.run([TALLY, "scoreboard", "--server", server.url, *runs, "--keys", "eval/", "--baseline", runs[0]],
                           capture_output=True, text=True, check=True).stdout
    lines = table.splitlines()
    assert lines[0].split() == ["key", "ckpt0", "ckpt1", "ckpt2"]
    assert "[eval] mean" in lines[1] and "eval/loss" in lines[2] and "0.333333*" in lines[2] and "(-0.5)" in lines[2]
    csv = subprocess.run([TALLY, "scoreboard", "--server", server.url, "--experiment", exp, "--regex", "^suite0/", "--format", "csv"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert csv[0].startswith("key,group,") and len(csv) == 41
    bad = subprocess.run([TALLY, "scoreboard", "--server", server.url, "0123456789abcdef0123456789abcdef"], capture_output=True, text=True)
    assert bad.returncode != 0 and "404" in bad.stderr
