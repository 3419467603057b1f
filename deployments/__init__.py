"""How flows run: task-runner factory, local Prefect server helper, command line.

Prefect puts this folder on `sys.path` when a worker loads `entrypoints.py`, so a module here
must never share a name with a standard-library module (an `inspect.py` here broke Dask's
worker start-up in deployment runs).
"""
