import pytest

from execrl.sandbox import SandboxPool


@pytest.fixture(scope="session")
def pool():
    """One isolated pool for the whole session (starting one costs ~0.1 s per worker)."""
    with SandboxPool(workers=2) as p:
        yield p


@pytest.fixture(scope="session")
def inline_pool():
    with SandboxPool(workers=2, mode="inline") as p:
        yield p
