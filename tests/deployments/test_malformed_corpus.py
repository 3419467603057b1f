"""A corpus of malformed inputs (tests/corpus/malformed/<case>/, the expected message parts
in expected.txt): each stops `ordercast forecast` with one clear line, exit 1, and nothing written."""
from __future__ import annotations

from pathlib import Path

import pytest

from deployments.cli import main

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "malformed"
CASES = sorted(folder.name for folder in CORPUS.iterdir())
TABLES = ("weather", "events", "promotions", "regions")


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 20


def case_arguments(folder: Path) -> list[str]:
    orders = folder / "orders.parquet" if (folder / "orders.parquet").exists() else folder / "orders.csv"
    arguments = ["--orders", str(orders)]
    for table in TABLES:
        if (folder / f"{table}.csv").exists():
            arguments += [f"--{table}", str(folder / f"{table}.csv")]
    return arguments


@pytest.mark.parametrize("case", CASES)
def test_malformed_input_gives_one_clear_line_and_writes_nothing(case, prefect_server, tmp_path, capsys):
    folder = CORPUS / case
    out = tmp_path / "out"
    before = sorted(path.name for path in folder.iterdir())
    code = main(["forecast", *case_arguments(folder), "--out", str(out), "--cluster", "serial",
                 "--horizon-days", "1"])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert code == 1
    assert len(errors) == 1, errors
    for part in (folder / "expected.txt").read_text().splitlines():
        assert part in errors[0], f"{part!r} not in {errors[0]!r}"
    written = [path.name for path in out.iterdir() if not path.name.startswith(".")] if out.exists() else []
    assert written == []  # nothing half-written (only the run's hidden lock files)
    assert sorted(path.name for path in folder.iterdir()) == before  # inputs untouched
