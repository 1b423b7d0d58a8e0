"""`tally server` started the way `mlflow server` is started: a Dockerfile's `-h 0.0.0.0 -p 5000 -w 4 --serve-artifacts`,
or MLflow's environment variables (MLFLOW_BACKEND_STORE_URI, MLFLOW_HOST, MLFLOW_PORT, …) — options that change
nothing here are accepted and named in a notice, those asking what Tally cannot do refuse the start with the reason."""
import os
import subprocess
import tempfile

from mlflow import MlflowClient

from conftest import TALLY, free_port, refused_start, tally_serving


def test_mlflow_servers_command_line():
    port = free_port()
    args = ["-h", "127.0.0.1", "-p", str(port), "-w", "4", "--serve-artifacts", "--gunicorn-opts", "--timeout 120", "--dev",
            "--secrets-cache-ttl", "60", "--disable-workspaces"]
    # --disable-workspaces outweighs MLFLOW_ENABLE_WORKSPACES, as with MLflow's command.
    with tally_serving(args, f"http://127.0.0.1:{port}", {"MLFLOW_ENABLE_WORKSPACES": "true"}) as log:
        c = MlflowClient(f"http://127.0.0.1:{port}")
        run = c.create_run(c.create_experiment("from-a-dockerfile")).info.run_id
        c.log_metric(run, "loss", 0.5)
        assert c.get_run(run).data.metrics == {"loss": 0.5}
    said = open(log).read()
    assert "mlflow server options accepted and unused" in said, said
    assert "--workers 4 --serve-artifacts --gunicorn-opts --dev --secrets-cache-ttl --disable-workspaces" in said, said
    said = refused_start(["-p", str(free_port()), "--no-serve-artifacts"])
    assert "--no-serve-artifacts: Tally always serves artifacts" in said, said
    said = refused_start(["-p", str(free_port()), "--registry-store-uri", "sqlite:///elsewhere.db"])
    assert "Tally keeps the Model Registry in the backend store" in said, said
    # Every other option of `mlflow server` 3.17 is known: taken, accepted and named, or refused with the reason.
    for args, env, says in [(["--enable-workspaces"], {}, "Tally has no workspaces"), (["--artifacts-only"], {}, "not alone"),
                            ([], {"MLFLOW_ARTIFACTS_ONLY": "true"}, "not alone"), ([], {"MLFLOW_ARTIFACTS_ONLY": "maybe"}, "true or false"),
                            ([], {"MLFLOW_ENABLE_WORKSPACES": "1"}, "--enable-workspaces (or MLFLOW_ENABLE_WORKSPACES): Tally has no workspaces"),
                            ([], {"MLFLOW_ENABLE_WORKSPACES": "maybe"}, "MLFLOW_ENABLE_WORKSPACES is 'maybe': true or false"),
                            ([], {"MLFLOW_WORKSPACE": "team-a"}, "MLFLOW_WORKSPACE=team-a is client-only. Unset it before starting the server."),
                            (["--expose-prometheus", "/dev/null/prom"], {}, "--expose-prometheus /dev/null/prom: the directory cannot be created")]:
        said = refused_start(["-p", str(free_port()), *args], env)
        assert says in said, said
    import re
    from mlflow.cli import server as mlflow_server  # click's own list of the options
    mlflow_options = {o for p in mlflow_server.params for o in p.opts + p.secondary_opts if o.startswith("--")}
    tally_help = subprocess.run([TALLY, "server", "--help"], capture_output=True, text=True, timeout=60).stdout
    unknown = sorted(mlflow_options - set(re.findall(r"(--[a-z][a-z-]+)", tally_help)))
    assert len(mlflow_options) > 25 and unknown == [], unknown
    help = subprocess.run([TALLY, "server", "--help"], capture_output=True, text=True, timeout=60)
    assert help.returncode == 0 and "-h, --host" in help.stdout and "-w, --workers" in help.stdout, help.stdout


def test_mlflow_servers_environment_on_the_embedded_store():
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "meta.sqlite")
        env = {"MLFLOW_BACKEND_STORE_URI": f"sqlite:///{db}", "MLFLOW_PORT": str(port), "MLFLOW_HOST": "127.0.0.1",
               "MLFLOW_REGISTRY_STORE_URI": f"sqlite:///{db}", "MLFLOW_ENABLE_WORKSPACES": "false"}
        with tally_serving([], f"http://127.0.0.1:{port}", env):
            MlflowClient(f"http://127.0.0.1:{port}").create_experiment("env-configured")
        assert os.path.getsize(db) > 0, "the metadata did not go to MLFLOW_BACKEND_STORE_URI's file"
        # `tally token` beside that server, in the same environment, finds the same users.
        with tally_serving(["--auth", "basic"], f"http://127.0.0.1:{port}", {**env, "MLFLOW_AUTH_ADMIN_PASSWORD": "admin-password-1"}):
            pass
        made = subprocess.run([TALLY, "token", "create", "--data-dir", os.path.join(d, "data"), "--user", "admin", "--name", "ops"], capture_output=True,
                              text=True, timeout=60, env={**os.environ, **env})
        assert made.returncode == 0 and made.stdout.strip(), made.stderr
        alone = subprocess.run([TALLY, "token", "create", "--data-dir", os.path.join(d, "data"), "--user", "admin", "--name", "ops"], capture_output=True,
                               text=True, timeout=60)
        assert alone.returncode != 0 and "no data directory" in alone.stderr, alone.stderr  # the metadata is where the variable says
    # An option given wins over the variable (MLFLOW_PORT is not even read).
    port = free_port()
    with tally_serving(["-p", str(port)], f"http://127.0.0.1:{port}", {"MLFLOW_PORT": "http"}):
        pass


def test_static_prefix_from_the_environment_and_its_rules():
    port = free_port()
    with tally_serving(["--host", "127.0.0.1", "--port", str(port)], f"http://127.0.0.1:{port}/mlflow", {"MLFLOW_STATIC_PREFIX": "/mlflow"}) as log:
        MlflowClient(f"http://127.0.0.1:{port}/mlflow").create_experiment("env-prefixed")
    assert f"url=http://127.0.0.1:{port}/mlflow" in open(log).read()
    # MLflow's three rules, with its messages, and plain path segments.
    for prefix, says in [("mlflow", "--static-prefix must begin with a '/'."), ("/mlflow/", "--static-prefix should not end with a '/'."),
                         ("/{x}", "--static-prefix must not contain '{' or '}'."), ("/ml:flow", "use path segments")]:
        said = refused_start(["-p", str(free_port()), "--static-prefix", prefix])
        assert says in said, said
