"""Execution rewards against the documented value table, on hand-made completions."""

import asyncio

import pytest

from execrl.rewards import (
    CODERL_VALUES,
    AsyncExecutionReward,
    ExecutionReward,
    VerdictCache,
    coderl,
    decode_tests,
    encode_tests,
    pass_all,
    pass_fraction,
    task_rows,
)
from execrl.sandbox import CallCase, CheckTest, Limits, Status, StdioCase
from execrl.tasks import Task

TASK = Task(
    "t/sq", 'def sq(x: int) -> int:\n    """Square x.\n\n    >>> sq(2)\n    4\n    """\n',
    tests=tuple(CallCase("sq", [x], x * x) for x in (0, 1, 3, -4)), entry_point="sq",
    public_tests=(CallCase("sq", [2], 4),),
)
ROW = task_rows([TASK])[0]

COMPLETIONS = {  # completion -> (pass_all, pass_fraction, coderl)
    "correct": ("    return x * x\n", 1.0, 1.0, 1.0),
    "wrong": ("    return x + x\n", 0.0, 0.0, -0.3),  # 0+0 == 0*0 ... see below
    "half": ("    return x * x if x >= 0 else 0\n", 0.0, 0.75, -0.3),
    "syntax": ("    return x *\n", 0.0, 0.0, -1.0),
    "runtime": ("    return x * x if x == 0 else 1 / 0\n", 0.0, 0.25, -0.6),
    "timeout": ("    while True:\n        pass\n", 0.0, 0.0, -0.6),
    "memory": ("    return len([0] * (10 ** 10))\n", 0.0, 0.0, -0.6),
    "lying_eq": ("    class Yes(int):\n        def __eq__(self, o):\n            return True\n    return Yes(7)\n", 0.0, 0.0, -0.3),
    "early_exit": ("    import sys\n    sys.exit(0)\n", 0.0, 0.0, -0.6),
    "os_exit": ("    import os\n    os._exit(0)\n", 0.0, 0.0, -0.6),
    "prints": ("    print(x * x)\n", 0.0, 0.0, -0.3),
}
# "wrong" (x + x) is right for x = 0 only: one of four tests
COMPLETIONS["wrong"] = ("    return x + x\n", 0.0, 0.25, -0.3)


@pytest.fixture(scope="module")
def batch():
    names = list(COMPLETIONS)
    completions = [COMPLETIONS[n][0] for n in names]
    columns = {k: [ROW[k]] * len(names) for k in ("tests", "public_tests", "entry_point", "task_id")}
    return names, [ROW["prompt"]] * len(names), completions, columns


@pytest.mark.parametrize(("factory", "col"), [(pass_all, 1), (pass_fraction, 2), (coderl, 3)])
def test_values_match_the_documented_table(pool, batch, factory, col):
    names, prompts, completions, columns = batch
    fn = factory(pool=pool, limits=Limits(timeout=1.0, memory_mb=256))
    got = fn(prompts, completions, completion_ids=None, **columns)
    assert dict(zip(names, got, strict=True)) == {n: COMPLETIONS[n][col] for n in names}
    assert fn.__name__ == factory.__name__


def test_coderl_table_covers_every_program_status():
    assert set(CODERL_VALUES) == set(Status) - {Status.SANDBOX_ERROR}


def test_signals_and_stats_are_logged_through_trl_log_metric(pool, batch):
    names, prompts, completions, columns = batch
    logged = {}
    fn = pass_all(pool=pool, limits=Limits(timeout=1.0, memory_mb=256))
    fn(prompts, completions, log_metric=logged.__setitem__, trainer_state=object(), log_extra=lambda *a, **k: None, **columns)
    n = len(names)
    assert logged["execrl/pass_all/pass_rate"] == pytest.approx(1 / n)
    assert logged["execrl/pass_all/status/syntax_error"] == pytest.approx(1 / n)
    assert logged["execrl/pass_all/status/timeout"] == pytest.approx(1 / n)
    assert logged["execrl/pass_all/sandbox_errors"] == 0
    # sq(2) == 4 is the public example: "wrong" (x + x) and "half" pass it but fail hidden tests
    assert logged["execrl/pass_all/public_pass_hidden_fail"] == pytest.approx(2 / n)
    assert logged["execrl/pass_all/prints_instead_of_returning"] == pytest.approx(1 / n)
    assert logged["execrl/pass_all/suspicious_imports"] == pytest.approx(2 / n)  # import os; sys.exit


def test_harness_failure_is_none_and_counted_never_zero():
    killer = Task("t/k", "def f():\n", CheckTest("import os\ndef check(c):\n    os._exit(3)\n", "f"), "f")
    row = task_rows([killer])[0]
    fn = pass_all()
    try:
        out = fn([row["prompt"]] * 2, ["    return 1\n", "    return 2\n"], tests=[row["tests"]] * 2)
        assert out == [None, None]
        assert fn.last_stats["sandbox_errors"] == 2 and fn.totals["sandbox_errors"] == 2
        assert fn.cache is not None and len(fn.cache) == 0  # never cached
    finally:
        fn.close()


def test_cache_reuses_verdicts_for_the_same_program_modulo_formatting(pool):
    fn = pass_all(pool=pool)
    same = ["    return x*x\n", "    return x * x  # squared\n", "    return (x * x)\n"]
    assert fn([ROW["prompt"]] * 3, same, tests=[ROW["tests"]] * 3, public_tests=[""] * 3) == [1.0, 1.0, 1.0]
    assert (fn.cache.hits, fn.cache.misses) == (2, 1)  # one run for three completions
    fn([ROW["prompt"]], ["    return x * x\n"], tests=[ROW["tests"]], public_tests=[""])
    assert fn.cache.hits == 3
    other = ExecutionReward("pass_all", pool=pool, cache=False)
    assert other([ROW["prompt"]], ["    return x*x\n"], tests=[ROW["tests"]]) == [1.0] and other.cache is None


def test_cache_key_depends_on_tests_and_limits():
    k = VerdictCache.key("def f(): return 1", "tests-a", Limits())
    assert k == VerdictCache.key("def f():\n    return 1  # same", "tests-a", Limits())
    assert k != VerdictCache.key("def f(): return 1", "tests-b", Limits())
    assert k != VerdictCache.key("def f(): return 1", "tests-a", Limits(timeout=9))
    cache = VerdictCache(max_size=2)
    from execrl.sandbox import Verdict

    for key in "abc":
        cache.put(key, Verdict(Status.PASSED))
    assert len(cache) == 2 and cache.get("a") is None


def test_conversational_completions_and_task_id_lookup(pool):
    row = task_rows([TASK], chat=True)[0]
    assert row["prompt"] == [{"role": "user", "content": TASK.prompt}]
    answers = [[{"role": "assistant", "content": "Here:\n```python\ndef sq(x):\n    return x ** 2\n```"}],
               [{"role": "assistant", "content": "```python\ndef sq(x):\n    return 2 * x\n```"}]]
    fn = pass_fraction(pool=pool, tasks={TASK.task_id: TASK})
    assert fn([row["prompt"]] * 2, answers, task_id=[TASK.task_id] * 2) == [1.0, 0.25]


def test_async_form_returns_the_same_values(pool, batch):
    names, prompts, completions, columns = batch
    sync = coderl(pool=pool, limits=Limits(timeout=1.0, memory_mb=256))
    asyn = AsyncExecutionReward("coderl", pool=pool, limits=Limits(timeout=1.0, memory_mb=256))

    async def both():
        return await asyncio.gather(asyn(prompts, completions, **columns), asyn(prompts[:2], completions[:2], **columns))

    full, part = asyncio.run(both())
    assert full == sync(prompts, completions, **columns) and part == full[:2]


def test_test_columns_round_trip_and_bad_input():
    for tests in (TASK.tests, (StdioCase("1 2\n", "3\n"),), CheckTest("def check(c):\n    assert c((1, 2)) == {3}\n", "f", "", ("g",)),
                  (CallCase("f", [(1, 2), {3}, b"x"], (1, frozenset({2}))),)):
        assert decode_tests(encode_tests(tests)) == tests
    assert decode_tests("") == () and encode_tests(()) == ""
    from execrl.errors import DataError

    for bad in ("{", '{"kind": "nope"}', '{"kind": "call"}'):
        with pytest.raises(DataError, match="malformed tests column"):
            decode_tests(bad)
    with pytest.raises(DataError, match="needs a 'tests' column"):
        pass_all()(["p"], ["c"])
    with pytest.raises(ValueError, match="unknown score"):
        ExecutionReward("accuracy")


def test_combine_weights_components_and_logs_each(pool):
    from execrl.rewards import combine

    def length(prompts, completions, completion_ids=None, **kw):
        return [-len(c) / 100 for c in completions]

    async def flaky(prompts, completions, completion_ids=None, **kw):
        return [None if "None" in c else 1.0 for c in completions]

    fn = combine({pass_all(pool=pool): 1.0, length: 0.5, flaky: 2.0}, name="mix")
    comps = ["    return x * x\n", "    return None\n"]
    logged = {}
    out = fn([ROW["prompt"]] * 2, comps, tests=[ROW["tests"]] * 2, log_metric=logged.__setitem__)
    assert out[0] == pytest.approx(1.0 - 0.5 * len(comps[0]) / 100 + 2.0) and out[1] is None
    assert logged["execrl/mix/pass_all/mean"] == pytest.approx(0.5) and logged["execrl/mix/flaky/none"] == 1
    assert fn.__name__ == "mix"
    with pytest.raises(ValueError, match="names must differ"):
        combine([(length, 1.0), (length, 2.0)])


def test_async_rewards_sharing_a_pool_and_a_cache_run_concurrently_and_correctly(pool):
    """Found by the TRL integration work: TRL gathers async rewards, and two sharing one pool
    raced inside it (a wrong or missing verdict)."""
    cache = VerdictCache()
    a = AsyncExecutionReward("pass_all", pool=pool, cache=cache, name="a")
    b = AsyncExecutionReward("coderl", pool=pool, cache=cache, name="b")
    right, wrong = ["    return x * x\n"] * 6, ["    return x + 1\n"] * 6

    async def both():
        cols = {"tests": [ROW["tests"]] * 6, "public_tests": [""] * 6}
        return await asyncio.gather(a([ROW["prompt"]] * 6, right, **cols), b([ROW["prompt"]] * 6, wrong, **cols),
                                    a([ROW["prompt"]] * 6, wrong, **cols), b([ROW["prompt"]] * 6, right, **cols))

    for _ in range(3):
        ra, rb, wa, wb = asyncio.run(both())
        assert (ra, rb, wa, wb) == ([1.0] * 6, [-0.3] * 6, [0.0] * 6, [1.0] * 6)
    assert len(cache) == 2  # two distinct programs, whichever reward ran them first


def test_task_comparison_and_limits_travel_with_the_tests_column(pool):
    """Found by bench/rewards.py: the column carried only the tests, so a float task's
    tolerance (and a task's own limits) were ignored and right answers scored partial."""
    from execrl.sandbox import Compare

    task = Task("t/f", "def third(x):\n", tuple(CallCase("third", [x], x / 3 + 1e-12) for x in (1, 2, 4)), "third",
                compare=Compare(float_tol=1e-9), limits=Limits(timeout=0.5))
    row = task_rows([task])[0]
    spec = __import__("execrl.rewards", fromlist=["decode_spec"]).decode_spec(row["tests"])
    assert spec.compare == Compare(float_tol=1e-9) and spec.limits == Limits(timeout=0.5)
    progs = ["    return x / 3\n", "    import time\n    time.sleep(0.8)\n    return x / 3\n"]
    for fn in (pass_fraction(pool=pool), pass_fraction(pool=pool, tasks={task.task_id: task})):
        cols = {"tests": [row["tests"]] * 2} if fn.tasks is None else {"task_id": [task.task_id] * 2}
        assert fn([row["prompt"]] * 2, progs, **cols) == [1.0, 0.0]  # tolerance used; the task's 0.5 s limit too
    loose = pass_fraction(pool=pool, limits=Limits(timeout=3.0))  # an explicit limit overrides the task's
    assert loose([row["prompt"]] * 2, progs, tests=[row["tests"]] * 2) == [1.0, 1.0]


CHAT_ANSWERS = {  # chat answer to TASK -> (pass_all, coderl): an answer with no attempt scores lowest
    "empty": ("", 0.0, -1.0),
    "prose only": ("I cannot solve this.", 0.0, -1.0),
    "docstring and pass": ('```python\n"""todo"""\npass\n```', 0.0, -1.0),
    "no definition of sq": ("```python\nx = 1\n```", 0.0, -1.0),
    "another name": ("```python\ndef square(x):\n    return x * x\n```", 0.0, -1.0),
    "raises": ("```python\ndef sq(x):\n    raise ValueError\n```", 0.0, -0.6),
    "lambda": ("```python\nsq = lambda x: x * x\n```", 1.0, 1.0),
    "correct": ("```python\ndef sq(x):\n    return x * x\n```", 1.0, 1.0),
}


def test_coderl_scores_an_answer_with_no_attempt_below_a_runtime_error(pool):
    # answering nothing used to be a runtime error (-0.6): better than broken code (-1.0), a
    # reward hack PPO found; now it is scored like code that does not compile
    names = list(CHAT_ANSWERS)
    prompts = [[{"role": "user", "content": TASK.prompt}]] * len(names)
    columns = {k: [ROW[k]] * len(names) for k in ("tests", "entry_point")}
    answers = [CHAT_ANSWERS[n][0] for n in names]
    for fn, col in ((pass_all(pool=pool), 1), (coderl(pool=pool), 2)):
        got = fn(prompts, answers, **columns)
        assert dict(zip(names, got, strict=True)) == {n: CHAT_ANSWERS[n][col] for n in names}


def test_coderl_scores_an_empty_stdin_program_lowest(pool):
    task = Task("t/add", "Read two integers, print their sum.", tests=(StdioCase("1 2\n", "3\n"),))
    row = task_rows([task], chat=True)[0]
    answers = ["", "```python\nprint(0)\n```", "```python\na, b = map(int, input().split())\nprint(a + b)\n```",
               "```python\ndef main():\n    print(sum(map(int, input().split())))\n\n"
               "if __name__ == '__main__':\n    main()\n```"]
    columns = {"tests": [row["tests"]] * len(answers)}
    assert coderl(pool=pool)([row["prompt"]] * len(answers), answers, **columns) == [-1.0, -0.3, 1.0, 1.0]


@pytest.mark.parametrize(("program", "entry", "nothing"), [
    ("", "f", True),
    ("# a comment\n", None, True),
    ('"""doc"""\npass\n', None, True),
    ("x = 1\n", "f", True),
    ("def g():\n    pass\n", "f", True),
    ("print(1)\n", None, False),
    ("def f():\n    pass\n", "f", False),
    ("async def f():\n    pass\n", "f", False),
    ("class f:\n    pass\n", "f", False),
    ("f = g = len\n", "f", False),
    ("from math import sqrt as f\n", "f", False),
    ("import f\n", "f", False),
    ("if True:\n    def f():\n        pass\n", "f", False),  # may bind it: not judged
    ("def f(:\n", "f", False),  # a syntax error is judged as one
])
def test_no_attempt(program, entry, nothing):
    from execrl.rewards.execution import no_attempt

    assert no_attempt(program, entry) is nothing
