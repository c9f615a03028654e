"""The bundled HumanEval through both modes: every reference passes, empty bodies fail."""

from execrl.sandbox import Status
from execrl.tasks import humaneval


def test_all_164_references_pass_in_isolated_and_inline_modes(pool, inline_pool):
    tasks = humaneval.load()
    assert len(tasks) == 164
    runs = [t.run(t.reference) for t in tasks.values()]
    for p in (pool, inline_pool):
        failures = [(t, v.detail) for t, v in zip(tasks, p.run(runs), strict=True) if not v.passed]
        assert failures == []


def test_pass_bodies_fail_in_both_modes(pool, inline_pool):
    tasks = humaneval.load()
    runs = [t.run(t.prompt + "    pass\n") for t in tasks.values()]
    for p in (pool, inline_pool):
        vs = p.run(runs)
        assert not any(v.passed for v in vs)
    assert {v.status for v in pool.run(runs)} <= {Status.FAILED, Status.ERROR}
