"""Fast metric logging to a Tally server.

    import tally_client
    with tally_client.Run(experiment="my-exp") as run:     # or Run(run_id=...) for an MLflow run
        for step in range(100_000):
            run.log(step, loss=..., acc=...)

Points are buffered per key in columns and sent as binary batches (docs/api.md) from a background thread over
one keep-alive connection. Every batch carries an id, so a retried batch is stored once. Runs are ordinary MLflow
runs: the mlflow client and UI see the points (get-history), and `Run(run_id=mlflow_run.info.run_id)` logs into a
run the mlflow client created.
"""
from .client import Run, TallyError, encode_batch, compare

__all__ = ["Run", "TallyError", "encode_batch", "compare"]
__version__ = "0.1.0"
