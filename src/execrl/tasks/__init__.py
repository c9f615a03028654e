"""Tasks: the problem model and benchmark loaders.

Every loader reads a benchmark's real public format from a local file or, when ``datasets``
is installed and the machine is online, from its Hugging Face dataset name.
"""

from execrl.tasks import apps, basic, codecontests, evalplus, humaneval, livecodebench, mbpp
from execrl.tasks._model import Task

BENCHMARKS = {
    "humaneval": humaneval.load,
    "humaneval+": evalplus.load,
    "mbpp": mbpp.load,
    "mbpp+": lambda path=None: evalplus.load(path or "evalplus/mbppplus"),
    "apps": apps.load,
    "codecontests": codecontests.load,
    "livecodebench": livecodebench.load,
    "execrl-basic": basic.load,
}

__all__ = [
    "BENCHMARKS",
    "Task",
    "apps",
    "basic",
    "codecontests",
    "evalplus",
    "humaneval",
    "livecodebench",
    "load_benchmark",
    "mbpp",
]


def load_benchmark(name: str, path: str | None = None) -> dict[str, Task]:
    """Load a benchmark by name, from ``path`` (its public format) or its default source
    (bundled for humaneval and execrl-basic, the Hugging Face dataset for the others)."""
    from execrl.errors import DataError

    try:
        loader = BENCHMARKS[name]
    except KeyError:
        raise DataError(f"unknown benchmark {name!r}; choose one of: {', '.join(BENCHMARKS)}") from None
    return loader(path)
