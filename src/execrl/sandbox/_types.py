"""Plain data that crosses stage boundaries: what to run, with which limits, and the verdict."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any, Literal


class Status(str, enum.Enum):
    """Outcome of one run. Only ``PASSED`` is a success; ``SANDBOX_ERROR`` is never the program's fault.

    - ``passed``: every expected test ran and the trusted side found every answer right.
    - ``failed``: the program ran but at least one answer was wrong.
    - ``error``: the program raised (or exited) while loading or during a test.
    - ``syntax_error``: the program does not compile.
    - ``timeout``: wall-clock or CPU limit hit; the whole process tree was killed.
    - ``memory_limit``: the program ran out of its address-space limit.
    - ``output_limit``: stdout/stderr or a file grew past its cap.
    - ``crashed``: the process died by a signal (segfault, abort, killed itself...).
    - ``sandbox_error``: the harness failed; retried once, then reported as such.
    """

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SYNTAX_ERROR = "syntax_error"
    TIMEOUT = "timeout"
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"
    CRASHED = "crashed"
    SANDBOX_ERROR = "sandbox_error"


@dataclass(frozen=True)
class Limits:
    """Per-execution limits. ``timeout`` is wall-clock seconds for one process (for stdio
    tests, each case is its own process)."""

    timeout: float = 3.0
    cpu_time: float | None = None  # defaults to timeout + 1 (rounded up)
    memory_mb: int = 1024  # address space of the untrusted process
    output_bytes: int = 1 << 20  # each of stdout and stderr
    file_size_mb: int = 16  # largest file the program may write
    processes: int = 16  # processes + threads the program may have at once
    open_files: int = 64
    scratch_mb: int = 64  # size of the private tmpfs scratch dir


@dataclass(frozen=True)
class CheckTest:
    """Test code that runs on the trusted side against proxies of the program's functions.

    ``test`` either defines ``check(candidate)`` (HumanEval), called with the proxy of
    ``entry_point``, or is plain statements such as MBPP's ``assert f(x) == y``, which name
    the program's functions directly: ``entry_point`` and every name in ``functions`` are
    bound to proxies that call into the untrusted process. ``prelude`` is benchmark text
    (the prompt, imports, set-up code) executed first, so the test finds the helpers it
    names; it never comes from the program.
    """

    test: str
    entry_point: str
    prelude: str = ""
    functions: tuple[str, ...] = ()
    kind: Literal["check"] = "check"


@dataclass(frozen=True)
class CallCase:
    """One call-based case: ``fn_name(*args) == expected`` (APPS ``fn_name``, MBPP asserts)."""

    fn_name: str
    args: list[Any]
    expected: Any
    kind: Literal["call"] = "call"


@dataclass(frozen=True)
class StdioCase:
    """One stdin/stdout case; the program runs as ``__main__`` in a fresh process."""

    stdin: str
    expected_stdout: str
    kind: Literal["stdio"] = "stdio"


@dataclass(frozen=True)
class Compare:
    """How answers are compared. ``float_tol`` is relative *and* absolute tolerance;
    ``whitespace`` ignores runs of whitespace and trailing blank lines in stdout."""

    float_tol: float | None = None
    whitespace: bool = True


@dataclass(frozen=True)
class Run:
    """One program and its tests. ``program`` is the whole untrusted source."""

    program: str
    tests: CheckTest | tuple[CallCase, ...] | tuple[StdioCase, ...]
    limits: Limits = field(default_factory=Limits)
    compare: Compare = field(default_factory=Compare)
    id: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.tests, list):
            object.__setattr__(self, "tests", tuple(self.tests))


@dataclass
class TestOutcome:
    """Detail for one test (or, for check-style tests, one candidate call that went wrong)."""

    index: int
    status: Status
    detail: str = ""


@dataclass
class Verdict:
    """What the trusted side concluded about one :class:`Run`."""

    status: Status
    tests_total: int = 0
    tests_passed: int = 0
    tests: list[TestOutcome] = field(default_factory=list)
    duration: float = 0.0
    stdout: str = ""
    stderr: str = ""
    detail: str = ""
    id: str | None = None

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status.value
        d["passed"] = self.passed
        d["tests"] = [{**t, "status": t["status"].value} for t in d["tests"]]
        return d
