"""How flows run: task-runner factory, local Prefect server helper, command line."""
