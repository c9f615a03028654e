"""The execution sandbox: the trust boundary between model-written code and everything else.

>>> from execrl.sandbox import SandboxPool, Run, CallCase
>>> with SandboxPool(workers=2) as pool:                     # doctest: +SKIP
...     [v] = pool.run([Run("def f(x): return x + 1", [CallCase("f", [1], 2)])])
>>> v.status                                                 # doctest: +SKIP
<Status.PASSED: 'passed'>
"""

from execrl.sandbox._pool import SandboxError, SandboxPool
from execrl.sandbox._types import (
    CallCase,
    CheckTest,
    Compare,
    Limits,
    Run,
    Status,
    StdioCase,
    TestOutcome,
    Verdict,
)

__all__ = [
    "CallCase",
    "CheckTest",
    "Compare",
    "Limits",
    "Run",
    "SandboxError",
    "SandboxPool",
    "Status",
    "StdioCase",
    "TestOutcome",
    "Verdict",
]
