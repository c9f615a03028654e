"""Functional behaviour of the pool: statuses per test kind, detail, order, retries, leaks."""

import os
import time

import pytest

from execrl.sandbox import CallCase, CheckTest, Compare, Limits, Run, SandboxPool, Status, StdioCase

ADD_TEST = CheckTest("def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(0, 0) == 0\n", "add")


@pytest.mark.parametrize(
    ("program", "status"),
    [
        ("def add(a, b):\n    return a + b\n", Status.PASSED),
        ("def add(a, b):\n    return a - b\n", Status.FAILED),
        ("def add(a, b)\n    return a + b\n", Status.SYNTAX_ERROR),
        ("def add(a, b):\n    raise KeyError('x')\n", Status.ERROR),
        ("raise ImportError('at load')\n", Status.ERROR),
        ("def add(a, b):\n    while True: pass\n", Status.TIMEOUT),
        ("def add(a, b):\n    return [0] * (10**10)\n", Status.MEMORY_LIMIT),
        ("import os, signal\ndef add(a, b):\n    os.kill(os.getpid(), signal.SIGSEGV)\n", Status.CRASHED),
        ("def add(a, b):\n    print('x' * 100000)\n    return a + b\n", Status.OUTPUT_LIMIT),
        ("def add(a, b):\n    return None\n", Status.FAILED),
    ],
)
def test_check_statuses(pool, program, status):
    limits = Limits(timeout=1.0, memory_mb=512, output_bytes=50_000)
    [v] = pool.run([Run(program, ADD_TEST, limits)])
    assert v.status is status, v
    assert v.passed is (status is Status.PASSED)


def test_call_cases_report_each_test(pool):
    cases = [CallCase("sq", [2], 4), CallCase("sq", [3], 9), CallCase("sq", [-1], 1), CallCase("sq", [5], 25)]
    [v] = pool.run([Run("def sq(x):\n    if x == 3: raise ValueError('three')\n    return x * x if x > 0 else 0\n", cases)])
    assert [t.status for t in v.tests] == [Status.PASSED, Status.ERROR, Status.FAILED, Status.PASSED]
    assert v.tests_passed == 2 and v.tests_total == 4
    assert v.status is Status.ERROR  # a raising case outranks a wrong answer
    assert "three" in v.tests[1].detail and "got 0" in v.tests[2].detail


def test_call_case_timeout_marks_the_case_and_stops(pool):
    cases = [CallCase("f", [0], 0), CallCase("f", [1], 1), CallCase("f", [2], 2)]
    [v] = pool.run([Run("def f(x):\n    while x == 1: pass\n    return x\n", cases, Limits(timeout=0.5))])
    assert v.status is Status.TIMEOUT
    assert [t.status for t in v.tests] == [Status.PASSED, Status.TIMEOUT]
    assert v.tests_total == 3 and v.tests_passed == 1


def test_stdio_cases_whitespace_and_float_tolerance(pool):
    prog = "a, b = map(float, input().split())\nprint(a / b)\nprint()\n"
    cases = [StdioCase("1 3\n", "0.333333\n"), StdioCase("4 2", "2.0")]
    [strict, tolerant] = pool.run(
        [Run(prog, cases), Run(prog, cases, compare=Compare(float_tol=1e-5))]
    )
    assert [t.status for t in strict.tests] == [Status.FAILED, Status.PASSED]
    assert tolerant.status is Status.PASSED and tolerant.tests_passed == 2
    [exact] = pool.run([Run("print('2.0 ')", [StdioCase("", "2.0")], compare=Compare(whitespace=False))])
    assert exact.status is Status.FAILED


def test_stdio_each_case_is_a_fresh_process(pool):
    # (read-only mounts holding an interpreter installed under /tmp are not the program's files)
    prog = "import os\nprint(len([n for n in os.listdir('.') if not os.path.ismount(n)]))\nopen('f%d' % os.getpid(), 'w').close()\n"
    [v] = pool.run([Run(prog, [StdioCase("", "0")] * 3)])
    assert v.status is Status.PASSED, v


def test_verdicts_come_back_in_input_order(pool):
    runs = [Run(f"import time\ndef f():\n    time.sleep({0.05 * (i % 3)})\n    return {i}\n", [CallCase("f", [], i)], id=str(i))
            for i in range(12)]
    vs = pool.run(runs)
    assert [v.id for v in vs] == [str(i) for i in range(12)]
    assert all(v.passed for v in vs)


def test_stdout_and_stderr_tails_are_kept(pool):
    prog = "import sys\nprint('hello out')\nprint('hello err', file=sys.stderr)\ndef f():\n    return 1\n"
    [v] = pool.run([Run(prog, [CallCase("f", [], 1)])])
    assert v.passed and "hello out" in v.stdout and "hello err" in v.stderr


def test_candidate_exceptions_are_rebuilt_for_tests_that_expect_them(pool):
    test = CheckTest("def check(candidate):\n    try:\n        candidate(-1)\n    except ValueError:\n        pass\n"
                     "    else:\n        raise AssertionError('no ValueError')\n    assert candidate(4) == 2\n", "root")
    prog = "def root(x):\n    if x < 0: raise ValueError('negative')\n    return int(x ** 0.5)\n"
    [ok, bad] = pool.run([Run(prog, test), Run("def root(x):\n    return 2\n", test)])
    assert ok.passed and bad.status is Status.FAILED


def test_harness_failure_is_retried_once_then_reported_as_sandbox_error():
    """A test whose own code kills the driver is the harness's fault, never the program's."""
    killer = CheckTest("import os\ndef check(candidate):\n    os._exit(3)\n", "f")
    with SandboxPool(workers=1) as p:
        [bad, good] = p.run([Run("def f():\n    return 1\n", killer), Run("def f():\n    return 1\n", [CallCase("f", [], 1)])])
        assert bad.status is Status.SANDBOX_ERROR
        assert good.passed
        assert p.retries >= 1 and p.restarts >= 2


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def _children() -> set[int]:
    me = os.getpid()
    out = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == me:
                    out.add(int(pid))
        except (OSError, IndexError, ValueError):
            pass
    return out


def test_thousands_of_runs_leak_no_process_fd_or_scratch():
    progs = [
        Run("def f(x):\n    return x\n", [CallCase("f", [1], 1)]),
        Run("import os, time\ndef f(x):\n    if os.fork() == 0:\n        time.sleep(60)\n    return x\n", [CallCase("f", [1], 1)]),
        Run("open('junk', 'w').write('x' * 1000)\nprint(1)", [StdioCase("", "1")]),
        Run("def f(x) return", [CallCase("f", [1], 1)]),
    ]
    fds_before = _fd_count()
    tmp_before = set(os.listdir("/tmp"))
    children_before = _children()  # other fixtures' workers may be alive
    with SandboxPool(workers=2) as p:
        workers_before = _children()
        assert len(workers_before - children_before) == 2
        vs = p.run(progs * 500)
        assert {v.status for v in vs} == {Status.PASSED, Status.SYNTAX_ERROR}
        assert _children() == workers_before  # same two workers, nothing else
        assert p.restarts == 0
        # inside the sandbox the scratch dir is empty again
        prog = "import os\nprint([n for n in os.listdir('.') if not os.path.ismount(n)], os.listdir('/dev/shm'))"
        [v] = p.run([Run(prog, [StdioCase("", "[] []")])])
        assert v.passed, v.stdout
    time.sleep(0.1)
    assert _fd_count() == fds_before
    new = set(os.listdir("/tmp")) - tmp_before  # other processes may share /tmp: look at ours
    assert {n for n in new if n.startswith("execrl") or n == "junk"} == set()
    assert _children() == children_before


def test_a_reply_trickled_byte_by_byte_still_times_out(pool):
    """Found by reading the driver: a per-recv timeout let a slow drip outlive the deadline
    and end as sandbox_error (which rewards skip) instead of timeout."""
    prog = (
        "import os, struct, time\n"
        "def f():\n"
        "    os.write(3, struct.pack('>I', 1000))\n"
        "    while True:\n"
        "        os.write(3, b' ')\n"
        "        time.sleep(0.2)\n"
    )
    [v] = pool.run([Run(prog, [CallCase("f", [], 1)], Limits(timeout=1.0))])
    assert v.status is Status.TIMEOUT, v


@pytest.mark.parametrize(
    ("program", "status"),
    [
        ("import os\nos._exit(0)\n", Status.ERROR),
        ("import os\nos._exit(121)\n", Status.ERROR),
        ("import os\nos.close(3)\n", Status.ERROR),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", Status.CRASHED),
        ("import os\nos.write(3, b'B')\nos._exit(0)\n", Status.ERROR),
    ],
)
def test_dying_while_loading_is_the_programs_fault_never_sandbox_error(pool, program, status):
    """sandbox_error means 'skip this sample' to rewards; a program must not be able to claim it."""
    [v] = pool.run([Run(program, [CallCase("f", [], 1)])])
    assert v.status is status, v


CANDIDATE_SEMANTICS = [
    # (program, test): what plain Python allows and isolated mode reproduces
    ("def f(x):\n    return (i for i in x)\n", "def check(c):\n    assert list(c([1, 2])) == [1, 2]\n    assert c([1]) != [1]\n"),
    ("def f(x):\n    x.sort()\n", "def check(c):\n    l = [3, 1]\n    c(l)\n    assert l == [1, 3]\n"),
    ("def f(d):\n    d['k'] = 1\n", "def check(c):\n    d = {}\n    c(d)\n    assert d == {'k': 1}\n"),
    ("from fractions import Fraction\ndef f(x):\n    return Fraction(1, x)\n",
     "from fractions import Fraction\ndef check(c):\n    assert c(3) == Fraction(1, 3)\n"),
    ("from decimal import Decimal\ndef f(x):\n    return Decimal('1.10')\n",
     "from decimal import Decimal\ndef check(c):\n    assert c(3) == Decimal('1.1')\n"),
    ("def f(x):\n    return range(x)\n", "def check(c):\n    assert c(3) == range(3)\n"),
    ("def f(x):\n    while True:\n        yield x\n",
     "import itertools\ndef check(c):\n    assert list(itertools.islice(c(1), 3)) == [1, 1, 1]\n"),
]


@pytest.mark.parametrize(("program", "test"), CANDIDATE_SEMANTICS)
def test_candidate_semantics_match_plain_python(pool, inline_pool, program, test):
    run = Run(program, CheckTest(test, "f"))
    [isolated], [inline] = pool.run([run]), inline_pool.run([run])
    assert isolated.passed and inline.passed, (isolated, inline)


def test_wrong_in_place_change_still_fails(pool):
    [v] = pool.run([Run("def f(x):\n    x.append(0)\n", CheckTest("def check(c):\n    l = [3, 1]\n    c(l)\n    assert l == [1, 3]\n", "f"))])
    assert v.status is Status.FAILED


def test_passing_a_function_to_the_candidate_is_a_named_harness_limit(pool):
    [v] = pool.run([Run("def f(g):\n    return g(2)\n", CheckTest("def check(c):\n    assert c(lambda v: v * 3) == 6\n", "f"))])
    assert v.status is Status.SANDBOX_ERROR and "inline mode" in v.detail


def test_rebuilt_exception_detail_is_not_doubled(pool):
    [v] = pool.run([Run("def f():\n    raise TypeError('bad')\n", CheckTest("def check(c):\n    c()\n", "f"))])
    assert v.status is Status.ERROR and v.detail.count("TypeError") == 1, v.detail


MBPP_STYLE = CheckTest(
    test="assert similar([1, 2], [2, 3]) == (2,)\nassert helper(3) == 9\nassert math.isclose(ratio(1, 3), 0.3333, rel_tol=1e-3)\n",
    entry_point="similar",
    prelude="import math\n",
    functions=("helper", "ratio"),
)


@pytest.mark.parametrize(
    ("program", "status"),
    [
        ("def similar(a, b):\n    return tuple(set(a) & set(b))\ndef helper(x):\n    return x * x\ndef ratio(a, b):\n    return a / b\n", Status.PASSED),
        ("def similar(a, b):\n    return tuple(set(a) & set(b))\ndef helper(x):\n    return x + x\ndef ratio(a, b):\n    return a / b\n", Status.FAILED),
        ("def similar(a, b):\n    return tuple(set(a) & set(b))\ndef ratio(a, b):\n    return a / b\n", Status.ERROR),
    ],
)
def test_module_level_asserts_call_several_functions_by_name(pool, inline_pool, program, status):
    """MBPP's form: no check(), asserts naming the program's functions; each is a proxy."""
    [v] = pool.run([Run(program, MBPP_STYLE)])
    assert v.status is status, v
    [w] = inline_pool.run([Run(program, MBPP_STYLE)])
    assert w.passed is (status is Status.PASSED), w


def test_call_case_arguments_keep_their_types(pool):
    """Found by the loader work: call-case arguments were sent without re-encoding."""
    prog = "def f(x):\n    return type(x).__name__\n"
    args = [(1, 2), {1, 2}, b"ab", 1 + 2j, {1: "a"}, frozenset({3})]
    cases = [CallCase("f", [a], type(a).__name__) for a in args]
    [v] = pool.run([Run(prog, cases)])
    assert v.passed, v
    [w] = pool.run([Run("def f(d):\n    return sorted(d)\n", [CallCase("f", [{2: 'b', 1: 'a'}], [1, 2])])])
    assert w.passed, w  # int keys stay ints


def test_dict_and_set_subclass_answers_are_plain_values(pool):
    prog = "import collections\ndef f():\n    return collections.Counter('aab')\ndef g():\n    return collections.OrderedDict(a=1)\n"
    [v] = pool.run([Run(prog, [CallCase("f", [], {"a": 2, "b": 1}), CallCase("g", [], {"a": 1})])])
    assert v.passed, v
    [w] = pool.run([Run(prog, CheckTest("def check(c):\n    assert c() == {'a': 2, 'b': 1}\n", "f"))])
    assert w.passed, w


def test_a_program_function_named_check_is_not_the_tests_check(pool):
    [v] = pool.run([Run("def check(n):\n    return n > 1\n", CheckTest("assert check(2) == True\nassert check(1) == False\n", "check"))])
    assert v.passed, v
    [w] = pool.run([Run("def check(n):\n    return True\n", CheckTest("assert check(1) == False\n", "check"))])
    assert w.status is Status.FAILED, w


def test_solution_class_methods_are_callable(pool):
    prog = "class Solution:\n    def twoSum(self, nums, target):\n        seen = {}\n        for i, x in enumerate(nums):\n" \
           "            if target - x in seen:\n                return [seen[target - x], i]\n            seen[x] = i\n"
    [v] = pool.run([Run(prog, [CallCase("twoSum", [[2, 7, 11], 9], [0, 1]), CallCase("twoSum", [[3, 3], 6], [0, 1])])])
    assert v.passed, v


def test_a_batch_abandoned_midway_does_not_leak_answers_into_the_next():
    """Found on rereading the pool: jobs still in flight when a caller stopped iterating
    answered later, and were matched to the next batch's runs."""
    slow = [Run(f"import time\ndef f():\n    time.sleep(0.3)\n    return {i}\n", [CallCase("f", [], i)], id=f"old{i}")
            for i in range(6)]
    with SandboxPool(workers=2) as p:
        it = p.run_iter(slow)
        next(it)
        it.close()  # abandoned with jobs in flight
        fresh = [Run(f"def f():\n    return {i}\n", [CallCase("f", [], i)], id=f"new{i}") for i in range(6)]
        vs = p.run(fresh)
        assert [v.id for v in vs] == [r.id for r in fresh] and all(v.passed for v in vs), vs
