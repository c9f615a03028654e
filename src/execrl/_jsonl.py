"""JSONL reading with one-line errors, and an append-only writer that survives crashes."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from typing import IO, Any

from execrl.errors import DataError


def _open_text(path: str) -> IO[str]:
    try:
        if path.endswith(".gz"):
            return gzip.open(path, "rt", encoding="utf-8")
        return open(path, encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a .jsonl file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None


def read_jsonl(path: str, required: tuple[str, ...] = ()) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line; raise :class:`DataError` on
    unreadable files, invalid JSON, non-object lines or missing ``required`` fields."""
    with _open_text(path) as f:
        try:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path} line {n}: not valid JSON ({exc.msg})") from None
                if not isinstance(obj, dict):
                    raise DataError(f"{path} line {n}: expected a JSON object, got {type(obj).__name__}")
                missing = [k for k in required if k not in obj]
                if missing:
                    raise DataError(f"{path} line {n}: missing field {', '.join(repr(k) for k in missing)}")
                yield n, obj
        except (UnicodeDecodeError, EOFError, gzip.BadGzipFile, OSError) as exc:
            raise DataError(f"{path}: cannot read ({exc})") from None


def read_done(path: str) -> list[dict[str, Any]]:
    """Complete lines of a results file written by :class:`AppendWriter`; a torn last line
    (the process died mid-write) is cut off so the file can be appended to again."""
    if not os.path.exists(path):
        return []
    done: list[dict[str, Any]] = []
    good = 0
    with open(path, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break
            try:
                obj = json.loads(raw)
            except ValueError:
                break
            if not isinstance(obj, dict):
                break
            done.append(obj)
            good += len(raw)
    if good != os.path.getsize(path):
        with open(path, "rb+") as f:
            f.truncate(good)
    return done


class AppendWriter:
    """Appends one JSON object per line and flushes each, so a crash loses at most the line
    being written."""

    def __init__(self, path: str, fresh: bool) -> None:
        parent = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(parent, exist_ok=True)
            self._f = open(path, "w" if fresh else "a", encoding="utf-8")
        except OSError as exc:
            raise DataError(f"{path}: cannot write ({exc.strerror})") from None

    def write(self, obj: dict[str, Any]) -> None:
        self._f.write(json.dumps(obj) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> AppendWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
