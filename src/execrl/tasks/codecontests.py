"""CodeContests (Li et al. 2022, "Competition-Level Code Generation with AlphaCode").

Rows (DeepMind's release as Parquet or JSON Lines, or ``deepmind/code_contests``) have ``name``,
``description``, ``public_tests`` / ``private_tests`` / ``generated_tests`` (each
``{"input": [...], "output": [...]}``), ``solutions`` (``{"language": [...], "solution":
[...]}``), ``time_limit`` (``{"seconds", "nanos"}``, may be null), ``memory_limit_bytes``,
``difficulty`` and ``source`` (enums, kept as numbers and names in metadata).

- Hidden tests: private + generated; public tests: public. All are stdin/stdout cases compared
  ignoring runs of whitespace. Rows with no private or generated test are skipped with one
  logged warning giving the count.
- Reference: the first ``PYTHON3`` solution. Their ``Language`` enum is UNKNOWN_LANGUAGE = 0,
  PYTHON = 1 (Python 2, which this harness does not run), CPP = 2, PYTHON3 = 3, JAVA = 4.
- Limits: the problem's time limit (2 s when missing, at most 10 s; each case is its own process)
  and its memory limit as the address-space limit (256 MB when missing, at least 64 MB, which the
  Python interpreter itself needs). Contest limits are set for C++: callers may pass looser ones.
- Prompt: the description as given (``metadata["prompt_style"] == "description"``).
"""

from __future__ import annotations

import logging
from typing import Any

from execrl.errors import DataError
from execrl.sandbox import Compare, Limits, StdioCase
from execrl.tasks._model import Task
from execrl.tasks._rows import collect_tasks, require

HF_NAME = "deepmind/code_contests"
FIELDS = ("name", "description", "public_tests", "private_tests", "generated_tests")
LANGUAGES = {0: "UNKNOWN_LANGUAGE", 1: "PYTHON", 2: "CPP", 3: "PYTHON3", 4: "JAVA"}
PYTHON3 = 3
SOURCES = {0: "UNKNOWN_SOURCE", 1: "CODECHEF", 2: "CODEFORCES", 3: "HACKEREARTH", 4: "CODEJAM", 5: "ATCODER", 6: "AIZU"}
DEFAULT_TIMEOUT, MAX_TIMEOUT = 2.0, 10.0
DEFAULT_MEMORY_MB, MIN_MEMORY_MB = 256, 64
log = logging.getLogger(__name__)


def load(path: str | None = None, *, split: str | None = None) -> dict[str, Task]:
    """Read CodeContests (a file, or a Hugging Face split, default ``test``) into ``{name: Task}``."""
    path = path or HF_NAME
    tasks, skipped = collect_tasks(path, split, _task, "name")
    if not tasks:
        raise DataError(f"{path}: no usable problems" + (f" ({skipped} without hidden tests)" if skipped else ""))
    if skipped:
        log.warning("%s: skipped %d CodeContests problems without private or generated tests", path, skipped)
    return tasks


def _task(row: dict[str, Any], where: str, source: str) -> Task | None:
    require(row, where, FIELDS, {"name": str, "description": str, "public_tests": dict,
                                 "private_tests": dict, "generated_tests": dict})
    public = _cases(row["public_tests"], where, "public_tests")
    hidden = _cases(row["private_tests"], where, "private_tests") + _cases(row["generated_tests"], where, "generated_tests")
    if not hidden:
        return None
    difficulty, src = row.get("difficulty"), row.get("source")
    return Task(
        task_id=row["name"],
        prompt=row["description"],
        tests=hidden,
        reference=_python3_solution(row.get("solutions"), where),
        public_tests=public,
        compare=Compare(whitespace=True),
        limits=_limits(row.get("time_limit"), row.get("memory_limit_bytes"), where),
        metadata={"source": source, "prompt_style": "description", "test_form": "stdio",
                  "difficulty": difficulty, "contest_source": SOURCES.get(src, src),
                  "cf_rating": row.get("cf_rating"), "n_private": len(row["private_tests"].get("input") or ()),
                  "n_generated": len(row["generated_tests"].get("input") or ())},
    )


def _cases(tests: dict[str, Any], where: str, key: str) -> tuple[StdioCase, ...]:
    inputs, outputs = tests.get("input") or [], tests.get("output") or []
    if not isinstance(inputs, list) or not isinstance(outputs, list) or len(inputs) != len(outputs):
        raise DataError(f"{where}: {key} must hold 'input' and 'output' lists of the same length")
    if not all(isinstance(s, str) for s in inputs + outputs):
        raise DataError(f"{where}: {key} inputs and outputs must be strings")
    return tuple(StdioCase(i, o) for i, o in zip(inputs, outputs, strict=True))


def _python3_solution(solutions: Any, where: str) -> str | None:
    if not solutions:
        return None
    if not isinstance(solutions, dict):
        raise DataError(f"{where}: 'solutions' must be an object with 'language' and 'solution' lists")
    languages, programs = solutions.get("language") or [], solutions.get("solution") or []
    if len(languages) != len(programs):
        raise DataError(f"{where}: 'solutions' has {len(languages)} languages for {len(programs)} solutions")
    return next((p for lang, p in zip(languages, programs, strict=True) if lang == PYTHON3), None)


def _limits(time_limit: Any, memory_bytes: Any, where: str) -> Limits:
    timeout = DEFAULT_TIMEOUT
    if time_limit:
        if not isinstance(time_limit, dict):
            raise DataError(f"{where}: 'time_limit' must be {{seconds, nanos}}, not {time_limit!r}")
        seconds = (time_limit.get("seconds") or 0) + (time_limit.get("nanos") or 0) / 1e9
        timeout = min(seconds, MAX_TIMEOUT) if seconds > 0 else DEFAULT_TIMEOUT
    memory_mb = DEFAULT_MEMORY_MB
    if memory_bytes:
        if not isinstance(memory_bytes, (int, float)):
            raise DataError(f"{where}: 'memory_limit_bytes' must be a number, not {memory_bytes!r}")
        memory_mb = max(MIN_MEMORY_MB, int(memory_bytes) >> 20)
    return Limits(timeout=timeout, memory_mb=memory_mb)
