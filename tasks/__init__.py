"""Thin Prefect tasks: each calls one `forecasting` function and adds names, retries and logs."""
