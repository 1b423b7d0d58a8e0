"""Real `mlflow server`s for the differential tests (and `mlflow` commands, `run`), started from a process that has
imported MLflow's dependencies once.

`mlflow server` is two Python processes: the command, which migrates the database, bootstraps the auth app's admin and
turns its options into settings, then the uvicorn worker it starts, which serves. Each imports mlflow and its
dependencies, ~5 s of CPU apiece here, and the interop passes start ~70 such servers. Here both processes are forked
from one fork server (`multiprocessing`'s forkserver) that imported those dependencies once (mlflow_oracle_preload.py):

1. the command: MLflow's own `mlflow server` (its click command, in the forked process), up to the moment it would
   start uvicorn. The uvicorn command line and environment it built are written to a file instead.
2. the worker: uvicorn's own command line, run in a second forked process with that environment.

Both are MLflow's and uvicorn's code with MLflow's arguments. What differs from the real processes:
- which process imported the libraries first. `mlflow.server`, which reads settings from the environment as it is
  imported, is imported by each process after its environment is set, as in the real ones. Other modules that read a
  setting as they are imported were imported by the fork server under its own environment: an oracle whose environment
  (or whose worker's) differs in one of those runs as the real processes instead, `mlflow server` or its
  `python -m uvicorn`;
- what `mlflow server` does after starting uvicorn: it forwards signals to the worker (the tests hold the worker
  itself) and starts MLflow's job runner (an oracle with the runner on runs as the real `mlflow server`);
- the exit handlers of a forked process, which ends with `os._exit` (the worker's are not run; uvicorn's exit by the
  signal that stopped it skips them too), and its `sys.argv`, `sys.path` and standard input, which are the fork
  server's.
"""

import atexit
import json
import multiprocessing
import multiprocessing.forkserver
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import weakref

_context = None
_making = threading.Lock()  # oracles start side by side, from threads

# The longest an oracle's command (migrations, the auth app's admin) may take, as `serving` waited for it before.
COMMAND_SECONDS = 180
# Where MLflow puts its job runner's queue, set for the worker only when the runner is on: an oracle with the runner
# runs as the real `mlflow server`, which starts it after uvicorn.
JOB_RUNNER = "_MLFLOW_HUEY_STORAGE_PATH"


def context():
    """The fork server's context, made on first use (the fork server starts with the first process)."""
    global _context
    with _making:
        if _context is None:
            _context = _start()
        return _context


def _start():
    """Starts the fork server; its context."""
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)  # the forked processes import this module by name
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["mlflow_oracle_preload"])
    # The fork server imports the preload module by name, and Python 3.11's does not take the caller's sys.path (a
    # module it cannot import is skipped without a word): it starts with this directory in PYTHONPATH. Its socket goes
    # in a directory multiprocessing makes and removes at exit, in the system's temporary directory rather than the
    # test run's, which is removed first.
    before, tmp = os.environ.get("PYTHONPATH"), tempfile.tempdir
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [here, before]))
    tempfile.tempdir = "/tmp"
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        tempfile.tempdir = tmp
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before
    return ctx


def _enter(env, cwd, log, out=None):
    """The forked process becomes the oracle's: its output to `log` (its standard output to `out` when given), its
    directory `cwd`, exactly the environment `env`."""
    if "mlflow.server" in sys.modules:
        raise SystemExit("mlflow.server was imported before the oracle's settings were made")
    for path, fds in ([(log, (1, 2))] if out is None else [(log, (2,)), (out, (1,))]):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        for target in fds:
            os.dup2(fd, target)
        os.close(fd)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    tempfile.tempdir = None  # from TMPDIR again, should the fork server have settled it


class _Started(BaseException):
    """Raised in place of starting uvicorn: the command line and environment `mlflow server` built for it."""


def _command(argv, env, cwd, log, out):
    """Runs `mlflow server ARGV` up to where it would start uvicorn; writes that command and its environment to
    `out`, with why the oracle should run as the real `mlflow server` (`server`) or its worker as the real uvicorn
    (`worker`) instead, if it should."""
    from mlflow_oracle_preload import stale

    def answer(**spec):
        with open(out, "w") as f:
            json.dump(spec, f)

    if differ := stale(env):
        answer(server=f"its environment differs in {', '.join(differ)}")
        return
    _enter(env, cwd, log)
    import mlflow.server

    def start(cmd, extra_env=None, **_):
        raise _Started(cmd, {**os.environ, **(extra_env or {})})

    mlflow.server._exec_cmd = start
    from mlflow.cli import cli
    try:
        cli.main(args=["server", *argv], prog_name="mlflow", standalone_mode=False)
    except _Started as s:
        cmd, worker_env = s.args
        differ = stale(worker_env)
        answer(cmd=cmd, env=worker_env, server="MLflow's job runner is on" if JOB_RUNNER in worker_env else None,
               worker=f"its environment differs in {', '.join(differ)}" if differ else None)
        return
    raise SystemExit("mlflow server returned without starting uvicorn")


def _worker(args, env, cwd, log):
    """uvicorn's command line ARGS, with the environment `mlflow server` made for it."""
    _enter(env, cwd, log)
    import uvicorn.main
    uvicorn.main.main(args=args, prog_name="uvicorn")


def start(argv, env, cwd, log):
    """`mlflow server ARGV` in `cwd` with exactly the environment `env`, its output appended to `log`: its serving
    process, a `subprocess.Popen` or an `Oracle`."""
    ctx = context()
    out = os.path.join(cwd, "uvicorn-command.json")
    command = ctx.Process(target=_command, args=(list(argv), dict(env), cwd, log, out), name="mlflow server")
    command.start()
    command.join(COMMAND_SECONDS)
    timed_out = command.exitcode is None
    if timed_out:
        command.kill()
        command.join()
    if command.exitcode != 0:
        why = f"did not get to start uvicorn within {COMMAND_SECONDS} s" if timed_out else f"exited with {command.exitcode}"
        raise RuntimeError(f"mlflow server {why}: " + open(log).read()[-3000:])
    with open(out) as f:
        spec = json.load(f)
    os.remove(out)  # it holds the whole environment: secrets among it
    with open(log, "a") as f:
        if spec["server"]:
            f.write(f"oracle: {spec['server']}: a plain mlflow server\n")
            f.flush()
            return subprocess.Popen([sys.executable, "-m", "mlflow", "server", *argv], cwd=cwd, stdout=f,
                                    stderr=subprocess.STDOUT, env=env)
        cmd, worker_env = spec["cmd"], spec["env"]
        if cmd[1:3] != ["-m", "uvicorn"]:  # [python, -m, uvicorn, *its arguments]
            raise RuntimeError(f"mlflow server would run {cmd[:3]}, not uvicorn")
        if spec["worker"]:
            f.write(f"oracle: {spec['worker']}: a plain uvicorn\n")
            f.flush()
            return subprocess.Popen(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, env=worker_env)
    return Oracle(ctx.Process(target=_worker, args=(cmd[3:], worker_env, cwd, log), name="mlflow worker"))


def _cli(args, env, cwd, out, err, stale_mark):
    """`mlflow ARGS` in `cwd` as `python -m mlflow` runs it, its output to the files `out` and `err`, its exit handlers
    run at the end as a process's are; only creates `stale_mark` if `env` is stale."""
    from mlflow_oracle_preload import stale
    if stale(env):
        open(stale_mark, "w").close()
        return
    _enter(env, cwd, err, out)
    from mlflow.cli import cli
    try:
        cli.main(args=args, prog_name="mlflow")
    finally:
        atexit._run_exitfuncs()  # a forked process ends with os._exit


def run(args, env, timeout):
    """`python -m mlflow ARGS` with exactly the environment `env`, as `subprocess.run(…, capture_output=True,
    text=True, timeout=timeout)` would run it, forked from the fork server (or run so, should `env` be stale)."""
    ctx = context()
    work = tempfile.mkdtemp(prefix="tally-mlflow-cli-")
    try:
        out, err, stale_mark = (os.path.join(work, name) for name in ("out", "err", "stale"))
        process = ctx.Process(target=_cli, args=(list(args), dict(env), os.getcwd(), out, err, stale_mark), name="mlflow cli")
        process.start()
        process.join(timeout)
        if process.exitcode is None:
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired(["mlflow", *args], timeout)
        if os.path.exists(stale_mark):
            return subprocess.run([sys.executable, "-m", "mlflow", *args], env=env, capture_output=True, text=True, timeout=timeout)
        read = lambda path: open(path).read() if os.path.exists(path) else ""
        return subprocess.CompletedProcess(["mlflow", *args], process.exitcode, read(out), read(err))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _probe(envs, answers):
    preloaded = "mlflow_oracle_preload" in sys.modules
    from mlflow_oracle_preload import stale
    answers.put((preloaded, [stale(env) for env in envs]))


def probe(*envs):
    """What a process forked from the fork server finds: whether the preload was imported before the fork (Python
    skips a preload it cannot import without a word), and for each environment the variables in which it differs from
    the fork server's among those read on import (what `start` asks of an oracle's)."""
    ctx = context()
    answers = ctx.Queue()
    process = ctx.Process(target=_probe, args=(list(envs), answers), name="oracle probe")
    process.start()
    try:
        return answers.get(timeout=60)
    finally:
        process.join(10)


# The forked workers not stopped yet. multiprocessing waits at exit for every child it started; an oracle a failed
# test never stopped would hold pytest for ever (a `subprocess.Popen` left running does not), so those are killed
# first (`atexit` runs this before multiprocessing's own handler, registered earlier, as it imported).
_running = weakref.WeakSet()


@atexit.register
def _kill_running():
    for oracle in list(_running):
        oracle.kill()
        oracle.process.join(10)


class Oracle:
    """A forked uvicorn worker as the subset of `subprocess.Popen` the tests use (`pid`, `poll`, `wait`, `terminate`,
    `kill`, `send_signal`)."""

    def __init__(self, process):
        self.process = process
        process.start()
        self.pid = process.pid
        _running.add(self)

    def poll(self):
        return self.process.exitcode

    def wait(self, timeout=None):
        self.process.join(timeout)
        if self.process.exitcode is None:
            raise subprocess.TimeoutExpired("mlflow worker", timeout)
        return self.process.exitcode

    def send_signal(self, sig):
        """`sig` to the worker while it runs (once it has exited, the fork server has reaped it: its pid may be
        another process's)."""
        if self.process.exitcode is None:
            os.kill(self.pid, sig)

    def terminate(self):
        self.send_signal(signal.SIGTERM)

    def kill(self):
        self.send_signal(signal.SIGKILL)
