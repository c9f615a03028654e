import ast

import pytest

from execrl.evaluation.extract import code_blocks, extract_program, sanitize

PROMPT = 'from typing import List\n\n\ndef add(a: int, b: int) -> int:\n    """Add two numbers."""\n'


def _defs(code):
    return [n.name for n in ast.parse(code).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]


def test_raw_continuation_of_the_prompt():
    code = extract_program("    return a + b\n\nprint(add(1, 2))\nassert add(1, 1) == 2\n", PROMPT, "add")
    assert code.startswith("from typing import List") and "return a + b" in code
    assert "print" not in code and "assert" not in code


def test_chat_answer_picks_the_block_defining_the_entry_point():
    text = (
        "Here is how to call it:\n```python\nprint(add(2, 3))\n```\n"
        "And the implementation:\n```python\nimport math\nK = 3\n\ndef helper(x):\n    return x * K\n\n"
        "def unused():\n    return 0\n\ndef add(a, b):\n    return helper(a) + b\n\nif __name__ == '__main__':\n"
        "    print(add(1, 2))\n```\nThis works."
    )
    code = extract_program(text, PROMPT, "add")
    assert _defs(code) == ["helper", "add"]
    assert "K = 3" in code and "import math" in code and "__main__" not in code and "unused" not in code


def test_whole_program_without_fences_and_a_torn_tail():
    code = extract_program("import os\n\ndef add(a, b):\n    return a + b\n\ndef add_more(a", PROMPT, "add")
    assert _defs(code) == ["add"] and "import os" in code


def test_unclosed_fence_and_other_languages():
    assert code_blocks("```js\nlet x = 1;\n```\n```python\nx = 1\n") == ["x = 1\n"]
    code = extract_program("```python\ndef add(a, b):\n    return a + b\n", PROMPT, "add")
    assert "return a + b" in code


def test_decorators_and_classes_are_kept_when_needed():
    src = "import functools\n\n@functools.lru_cache\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n\nprint(fib(10))\n"
    assert sanitize(src, "fib").startswith("import functools\n@functools.lru_cache\ndef fib")


def test_without_entry_point_drops_demo_code_only():
    src = "def f():\n    return 1\n\ndef test_f():\n    assert f() == 1\n\nprint(f())\nX = 2\n"
    assert _defs(sanitize(src)) == ["f"] and "X = 2" in sanitize(src)


SCRIPT = "import sys\n\ndef main():\n    n = int(input())\n    print(n * 2)\n\nif __name__ == '__main__':\n    main()\n"


def test_a_stdin_script_keeps_its_top_level_calls_and_main_guard():
    """A stdin/stdout task's program is the script itself: dropping its prints and main guard,
    as for a function task, left it printing nothing (every APPS/CodeContests answer failed)."""
    for text in (f"```python\n{SCRIPT}```", SCRIPT, f"Here you go:\n```python\n{SCRIPT}```\nDone."):
        assert extract_program(text, "Read n, print 2n.", None, script=True) == SCRIPT
    assert sanitize("print(int(input()) + 1)\n", script=True) == "print(int(input()) + 1)\n"
    assert sanitize("print(int(input()) + 1)\n") == "\n"  # a function task's demo code, dropped
    assert extract_program("x = int(input())\nprint(x", "Read x.", None, script=True) == "x = int(input())\n"


def test_stdin_scripts_extracted_from_chat_answers_pass_in_the_sandbox(pool):
    from execrl.sandbox import Run, StdioCase

    tests = (StdioCase("3\n", "6\n"), StdioCase("-1\n", "-2\n"))
    answers = [f"```python\n{SCRIPT}```", "```python\nprint(int(input()) * 2)\n```", SCRIPT]
    vs = pool.run([Run(extract_program(a, "Read n, print 2n.", None, script=True), tests) for a in answers])
    assert [v.passed for v in vs] == [True, True, True]


@pytest.mark.parametrize("garbage", ["", "I cannot help with that.", "```python\n```"])
def test_nothing_useful_still_returns_text(garbage):
    assert isinstance(extract_program(garbage, PROMPT, "add"), str)


def test_extracted_programs_run_in_the_sandbox(pool):
    from execrl.sandbox import CheckTest, Run

    test = CheckTest("def check(candidate):\n    assert candidate(2, 3) == 5\n", "add", PROMPT)
    texts = ["    return a + b\n", "```python\ndef add(a, b):\n    return a + b\nprint(add(1, 2))\n```",
             "```python\ndef add(a, b):\n    return a - b\n```"]
    vs = pool.run([Run(extract_program(t, PROMPT, "add"), test) for t in texts])
    assert [v.passed for v in vs] == [True, True, False]


def test_a_syntax_error_inside_the_function_is_kept_for_the_sandbox_to_report():
    """Cutting back to the prompt's stub would turn a syntax error into a mere wrong answer
    (found through the CodeRL reward, which values them differently)."""
    code = extract_program("    return sum(nums\n", "def f(nums):\n    \"\"\"Sum.\"\"\"\n", "f")
    assert "return sum(nums" in code
    with pytest.raises(SyntaxError):
        ast.parse(code)


@pytest.mark.timeout(60)  # a hang guard: the quadratic search took minutes on these
def test_hostile_shapes_neither_crash_nor_hang():
    """Found by the static-rewards work: deep nesting raised RecursionError out of extraction
    (a training step would crash), and the prefix search was quadratic on long garbage."""
    for text in ("1+" * 100000 + "1", "(" * 50000, "x = (\n" + "  1,\n" * 20000, "def f(:\n" * 5000):
        assert isinstance(extract_program(text, PROMPT, "add"), str)
        assert isinstance(sanitize(text, "add"), str)


def test_parse_program_is_silent_on_model_text():
    import warnings

    from execrl.evaluation.extract import parse_program

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a SyntaxWarning (e.g. '5x', an invalid escape) would raise here
        assert parse_program("def f(x):\n    return 5x\n") is None
        assert parse_program("def f(x):\n    return x is 5\n") is not None
        assert parse_program("s = '\\d'\n") is not None
        assert parse_program("(" * 500) is None
