"""Tasks: the problem model and benchmark loaders."""

from execrl.tasks import basic, humaneval
from execrl.tasks._model import Task

BENCHMARKS = {"humaneval": humaneval.load, "execrl-basic": basic.load}

__all__ = ["BENCHMARKS", "Task", "basic", "humaneval", "load_benchmark"]


def load_benchmark(name: str, path: str | None = None) -> dict[str, Task]:
    """Load a benchmark by name, from ``path`` (its public format) or its bundled copy."""
    from execrl.errors import DataError

    try:
        loader = BENCHMARKS[name]
    except KeyError:
        raise DataError(f"unknown benchmark {name!r}; choose one of: {', '.join(sorted(BENCHMARKS))}") from None
    return loader(path)
