"""Benchmark rows from a local file or a Hugging Face dataset, with one-line errors.

Every loader reads its rows here, so each accepts the same sources:

- a local ``.jsonl`` / ``.jsonl.gz`` (``line N``), ``.json`` holding a list of objects
  (``item N``, from 0; a ``.json`` that is really JSON Lines is read as such) or
  ``.parquet`` (``row N``, from 0; needs ``pyarrow``);
- a Hugging Face dataset name, optionally ``name:config`` (``row N`` of the split), or a
  local dataset directory, read with ``datasets.load_dataset`` (an optional dependency).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

from execrl._jsonl import _open_text, read_jsonl
from execrl.errors import DataError
from execrl.tasks._model import Task

FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".parquet")
Row = tuple[str, dict[str, Any]]  # (where, row): "FILE line 3", "FILE row 0"...


def read_rows(path: str, *, hf_split: str = "test") -> Iterator[Row]:
    """Yield ``(where, row)`` for each row of ``path``; ``where`` names the file and the
    line or row, for error messages. ``hf_split`` is used for Hugging Face datasets only."""
    if os.path.isfile(path):
        yield from _file_rows(path)
    elif os.path.isdir(path) or not _looks_like_a_path(path):
        yield from _hf_rows(path, hf_split)
    else:
        raise DataError(f"{path}: no such file")


def require(row: dict[str, Any], where: str, fields: tuple[str, ...], kinds: dict[str, type | tuple] | None = None) -> None:
    """Raise :class:`DataError` naming ``where`` if a field is missing or of the wrong type."""
    missing = [k for k in fields if k not in row or row[k] is None]
    if missing:
        raise DataError(f"{where}: missing field {', '.join(repr(k) for k in missing)}")
    for key, kind in (kinds or {}).items():
        if key in row and row[key] is not None and not isinstance(row[key], kind):
            names = "/".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise DataError(f"{where}: field {key!r} must be {names}, not {type(row[key]).__name__}")


def json_plain(value: Any) -> bool:
    """Whether ``value`` is built of JSON types only (None, bool, int, float, str, list, dict
    with str keys). The loaders keep call cases to such arguments, the form they were checked
    in; the sandbox now also carries tuples, sets, bytes and complex arguments intact, so this
    can be widened once the conversions are rechecked on real data."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, list):
        return all(json_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and json_plain(v) for k, v in value.items())
    return False


def _looks_like_a_path(path: str) -> bool:
    return path.endswith(FILE_SUFFIXES) or path.startswith(("/", "./", "../", "~"))


def _file_rows(path: str) -> Iterator[Row]:
    if path.endswith((".jsonl", ".jsonl.gz")):
        for n, row in read_jsonl(path):
            yield f"{path} line {n}", row
    elif path.endswith(".json"):
        with _open_text(path) as f:
            text = f.read()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.msg == "Extra data":  # JSON Lines under a .json name
                for n, row in read_jsonl(path):
                    yield f"{path} line {n}", row
                return
            raise DataError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON list of problems, got {type(data).__name__}")
        for i, row in enumerate(data):
            if not isinstance(row, dict):
                raise DataError(f"{path} item {i}: expected a JSON object, got {type(row).__name__}")
            yield f"{path} item {i}", row
    elif path.endswith(".parquet"):
        yield from _parquet_rows(path)
    else:
        raise DataError(f"{path}: unsupported file type; expected one of {', '.join(FILE_SUFFIXES)}")


def _parquet_rows(path: str) -> Iterator[Row]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading .parquet needs pyarrow: pip install pyarrow") from None
    i = 0
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=64):
            for row in batch.to_pylist():
                yield f"{path} row {i}", row
                i += 1
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: cannot read parquet ({str(exc).splitlines()[0] if str(exc) else exc})") from None


def _hf_rows(name: str, split: str) -> Iterator[Row]:
    try:
        import datasets
    except ImportError:
        raise DataError(
            f"{name!r} is not a local file, and loading Hugging Face datasets needs the datasets "
            "package: pip install datasets (or pass a local .jsonl/.json/.parquet file)"
        ) from None
    repo, _, config = name.partition(":")
    try:
        ds = datasets.load_dataset(repo, config or None, split=split)
    except Exception as exc:  # noqa: BLE001 - hub, network and script errors have no common base
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise DataError(
            f"cannot load Hugging Face dataset {name!r} (split {split!r}): {type(exc).__name__}: {first} "
            "(offline? pass a local .jsonl/.json/.parquet file instead)"
        ) from None
    for i, row in enumerate(ds):
        yield f"{name}[{split}] row {i}", dict(row)


def collect_tasks(path: str, split: str | None, make_task: Callable[[dict[str, Any], str, str], Task | None],
                  id_field: str) -> tuple[dict[str, Task], int]:
    """The loop every file-or-Hugging-Face loader shares: ``make_task(row, where, source)``
    per row (``None`` skips the row, counted), duplicates of ``id_field`` refused. Returns the
    tasks and the number of skipped rows; the caller words its own empty-set message."""
    is_file = os.path.isfile(path)
    if split is not None and is_file:
        raise DataError(f"{path}: split={split!r} applies to Hugging Face datasets; a file is one split already")
    source = os.path.basename(path) if is_file else path
    tasks: dict[str, Task] = {}
    skipped = 0
    for where, row in read_rows(path, hf_split=split or "test"):
        task = make_task(row, where, source)
        if task is None:
            skipped += 1
        elif task.task_id in tasks:
            raise DataError(f"{where}: duplicate {id_field} {row[id_field]!r}")
        else:
            tasks[task.task_id] = task
    return tasks, skipped
