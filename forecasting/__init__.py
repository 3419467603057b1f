"""ordercast's domain library: data contract, features, models, metrics and storage.

Plain Python, pandas, numpy and xgboost: nothing here imports Prefect or Dask.
"""
