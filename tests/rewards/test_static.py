"""Static rewards against their documented value tables, computed by hand."""

import importlib.util
import math
import subprocess
import sys

import pytest

from execrl.rewards import static
from execrl.rewards.static import (
    ComplexityReward,
    FormatReward,
    LengthReward,
    RuffReward,
    SecurityReward,
    SyntaxReward,
)

CLEAN = "def add(a, b):\n    return a + b\n"
LINT = "import os\n\n\ndef add(a, b):\n    return a + c\n"  # F401 unused import, F821 undefined name
COMPLEX = """def add(a, b):
    if a > 0:
        if b > 0:
            if a > b:
                return 1
            return 2
        return 3
    elif a < 0:
        return 4
    return 5
"""  # cc = 1 + 4 branches
INSECURE = """import pickle
import subprocess


def add(cmd, blob):
    value = eval(input())
    subprocess.call(cmd, shell=True)
    return value, pickle.loads(blob)
"""  # B403 LOW/HIGH 1 + B404 LOW/HIGH 1 + B307 MEDIUM/HIGH 3 + B602 HIGH/HIGH 10 + B301 MEDIUM/HIGH 3 = 18
EVAL = "def add(a, b):\n    return eval(input())\n"  # B307 MEDIUM/HIGH: 3
SYNTAX = "def add(a, b):\n    return a +\n"
CHAT = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\nIt adds two numbers."
CONV = [{"role": "assistant", "content": CHAT}]
CONV_PROMPT = [{"role": "user", "content": "Write add(a, b)."}]

BATCH = [CLEAN, LINT, COMPLEX, INSECURE, EVAL, SYNTAX, CHAT, CONV]
PROMPTS = ["Write add(a, b)."] * (len(BATCH) - 1) + [CONV_PROMPT]
COLUMNS = {"entry_point": ["add"] * len(BATCH)}


def mi(volume, complexity, lloc):
    """radon's maintainability index without the comment term (the reward's default)."""
    if volume <= 0 or lloc <= 0:
        return 100.0
    return max(0.0, (171 - 5.2 * math.log(volume) - 0.23 * complexity - 16.2 * math.log(lloc)) * 100 / 171)


# `a + b`: operators {+} once, operands {a, b} once each -> N = n = 3, V = 3 log2 3; 2 logical lines
MI_CLEAN = mi(3 * math.log2(3), 1, 2)


@pytest.fixture(scope="module")
def ruff():
    return RuffReward()


@pytest.fixture(scope="module")
def bandit():
    return SecurityReward()


class Recorder:
    def __init__(self):
        self.metrics = {}

    def __call__(self, name, value):
        self.metrics[name] = value


@pytest.fixture
def tool_runs(monkeypatch):
    """Every subprocess.run call made while the test runs: (argv, number of program files)."""
    runs = []
    real = subprocess.run

    def counting(cmd, *args, **kwargs):
        runs.append((cmd, sum(str(a).endswith(".py") for a in cmd)))
        return real(cmd, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", counting)
    return runs


# -- the value tables -------------------------------------------------------------------------------
def test_syntax_table():
    values = SyntaxReward()(PROMPTS, BATCH, **COLUMNS)
    assert values == [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0]
    assert SyntaxReward()([None], [""]) == [0.0]  # empty: nothing to run
    assert SyntaxReward()([None], ["Here is prose only."]) == [0.0]


def test_ruff_table(ruff, tool_runs):
    values = ruff(PROMPTS, BATCH, **COLUMNS)
    assert values == [1.0, 1 / 3, 1.0, 1.0, 1.0, -1.0, 1.0, 1.0]
    assert len(tool_runs) == 1
    assert ruff(None, ["import os\nimport sys\nimport json\n"]) == [0.25]  # three F401


def test_ruff_ignores_noqa_and_selects_rules(ruff):
    assert ruff(None, ["import os  # noqa\n"]) == [0.5]
    assert RuffReward(select=["E"])(None, [LINT]) == [1.0]  # F rules off
    assert RuffReward(select=["E501"], line_length=20)(None, [CLEAN]) == [1.0]
    assert RuffReward(select=["E501"], line_length=16)(None, ["def add(a, b):\n    return a + b  # long\n"]) == [0.5]


def test_complexity_table():
    reward = ComplexityReward()
    values = reward(PROMPTS, BATCH, **COLUMNS)
    clean = 0.5 * MI_CLEAN / 100 + 0.5 * 1.0
    assert values[0] == pytest.approx(clean)
    assert values[6] == values[7] == pytest.approx(clean)  # the fenced answer holds the same program
    assert values[5] == 0.0  # syntax error
    assert values[3] == pytest.approx(1.0)  # no operator: Halstead volume 0 -> MI 100; cc 1
    cc, mi_complex = reward.measure(COMPLEX, "add")
    assert cc == 5
    assert values[2] == pytest.approx(0.5 * mi_complex / 100 + 0.5 * (1 - (5 - 1) / 10))
    assert 0 < mi_complex < MI_CLEAN
    assert ComplexityReward(mi_weight=0.0)(None, [COMPLEX]) == [pytest.approx(0.6)]
    assert ComplexityReward(mi_weight=0.0, cc_scale=2)(None, [COMPLEX]) == [0.0]


def test_complexity_entry_point_closures_and_comments():
    helper = "def helper(x):\n    if x:\n        return 1\n    return 2\n\n\ndef add(a, b):\n    return helper(a)\n"
    reward = ComplexityReward()
    assert reward.measure(helper, "add")[0] == 1  # the entry point alone
    assert reward.measure(helper)[0] == 1.5  # no entry point: mean over functions
    nested = "def add(a, b):\n    def g(y):\n        if y:\n            return 1\n        return 2\n    if a:\n        return g(b)\n    return 0\n"
    assert reward.measure(nested, "add")[0] == 3  # 2 + (2 - 1): the closure's branch counts
    klass = "class Add:\n    def one(self, x):\n        if x:\n            return 1\n        return 2\n\n    def two(self):\n        return 0\n"
    assert reward.measure(klass, "Add")[0] == 1.5
    script = "n = int(input())\nif n > 0:\n    x = 1\nelif n < 0:\n    x = 2\n"
    assert reward.measure(script)[0] == 3
    commented = CLEAN.replace("    return", "    # adds\n    # two numbers\n    return")
    assert reward.measure(commented)[1] == pytest.approx(MI_CLEAN)  # comments buy nothing by default
    assert ComplexityReward(comment_bonus=True).measure(commented)[1] > MI_CLEAN
    # the entry point comes from the column, then the constructor
    assert reward(None, [helper], entry_point=["add"]) == [pytest.approx(0.5 * reward.measure(helper)[1] / 100 + 0.5)]
    assert ComplexityReward(mi_weight=0.0, entry_point="helper")(None, [helper]) == [pytest.approx(0.9)]


def test_security_table(bandit, tool_runs):
    values = bandit(PROMPTS, BATCH, **COLUMNS)
    assert values == [0.0, 0.0, 0.0, -1.0, pytest.approx(-0.3), 0.0, 0.0, 0.0]
    assert len(tool_runs) == 1
    weighted = SecurityReward(scale=100)(None, [INSECURE, "import pickle\n\n\ndef add(a):\n    return pickle.loads(a)\n"])
    assert weighted == [pytest.approx(-0.18), pytest.approx(-0.04)]


def test_security_ignores_nosec_and_skips_noise(bandit):
    assert bandit(None, ["def add(a, b):\n    return eval(input())  # nosec\n"]) == [pytest.approx(-0.3)]
    noise = "import random\n\n\ndef add(a, b):\n    assert a\n    return random.random()\n"
    assert bandit(None, [noise]) == [0.0]  # B101 (assert) and B311 (random) skipped by default
    assert SecurityReward(skip=())(None, [noise]) == [pytest.approx(-0.2)]  # two LOW/HIGH findings


def test_length_table():
    reward = LengthReward(target_chars=100)
    texts = ["x" * 50, "x" * 100, "x" * 150, "x" * 200, "x" * 300, ""]
    expected = [0.0, 0.0, math.exp(-0.25) - 1, math.exp(-1) - 1, math.exp(-4) - 1, 0.0]
    assert reward(None, texts) == pytest.approx(expected)
    short = LengthReward(target_chars=100, min_chars=20, scale=50)
    assert short(None, ["x" * 10, "x" * 20, "x" * 150, ""]) == pytest.approx(
        [math.exp(-0.25) - 1, 0.0, math.exp(-1) - 1, math.exp(-1) - 1]
    )
    assert reward(None, [[{"role": "assistant", "content": "x" * 200}]]) == [pytest.approx(math.exp(-1) - 1)]


def test_format_table():
    reward = FormatReward(entry_point="add")
    two_fences = CHAT + "\nOr:\n```py\ndef add(a, b):\n    return b + a\n```"
    cases = {
        CHAT: 1.0,
        "```\ndef add(a, b):\n    return a + b\n```": 1.0,  # untagged fence
        "Code:\n```python\nimport math\n```\nand\n```bash\nls\n```\n" + CHAT: 0.75,  # two Python fences
        two_fences: 0.75,
        "```python\ndef add(a, b):\n    return a + b\n": 0.75,  # unclosed: cut off
        CLEAN: 0.75,  # bare code while a fence is required
        "```python\ndef plus(a, b):\n    return a + b\n```": 0.5,
        "```python\n" + SYNTAX + "```": 0.25,
        "```python\n```": 0.25,
        "The answer is to add them.": 0.0,
        "": 0.0,
        SYNTAX: 0.0,
        "```bash\nls\n```": 0.0,
    }
    assert reward(None, list(cases)) == list(cases.values())


def test_format_without_fences_and_entry_points():
    prompt = 'def add(a, b):\n    """Add two numbers."""\n'
    body = "    return a + b\n"
    assert FormatReward(require_fence=False)([prompt], [body], entry_point=["add"]) == [1.0]
    assert FormatReward()([prompt], [body], entry_point=["add"]) == [0.75]
    assert FormatReward(require_fence=False)([prompt], ["   \n"], entry_point=["add"]) == [0.0]
    no_entry = FormatReward()
    assert no_entry(None, ["```python\nx = int(input())\nprint(x)\n```", "```python\nhello\n```", "hello"]) == [
        1.0, 0.5, 0.0,
    ]


# -- batching, order, signature ---------------------------------------------------------------------
def test_one_tool_run_per_batch_and_duplicates_written_once(ruff, bandit, tool_runs):
    batch = [CLEAN, LINT, CLEAN, EVAL, SYNTAX, CLEAN]
    ruff(None, batch)
    bandit(None, batch)
    assert [files for _, files in tool_runs] == [3, 3]  # CLEAN, LINT, EVAL; SYNTAX not sent
    SyntaxReward()(None, batch)
    ComplexityReward()(None, batch)
    LengthReward()(None, batch)
    FormatReward()(None, batch)
    assert len(tool_runs) == 2
    assert ruff(None, [SYNTAX, ""]) == [-1.0, -1.0] and bandit(None, []) == []
    assert len(tool_runs) == 2  # nothing to lint: no run


@pytest.mark.parametrize("make", [SyntaxReward, RuffReward, ComplexityReward, SecurityReward, FormatReward])
def test_values_follow_input_order(make):
    reward = make()
    forward = reward(PROMPTS, BATCH, **COLUMNS)
    backward = reward(PROMPTS[::-1], BATCH[::-1], entry_point=COLUMNS["entry_point"][::-1])
    assert backward == forward[::-1]
    assert len(set(forward)) > 1  # the batch tells programs apart


def test_trl_signature_and_logging(ruff):
    rec = Recorder()
    extras = []
    values = ruff(
        prompts=PROMPTS,
        completions=BATCH,
        completion_ids=[[1, 2, 3]] * len(BATCH),
        trainer_state=object(),
        log_metric=rec,
        log_extra=lambda *a, **k: extras.append((a, k)),
        task_id=[f"t{i}" for i in range(len(BATCH))],
        **COLUMNS,
    )
    assert ruff.__name__ == "ruff"
    assert rec.metrics["execrl/ruff/mean"] == pytest.approx(sum(values) / len(values))
    assert rec.metrics["execrl/ruff/violations"] == pytest.approx(2 / 7)
    for make, name in [(SyntaxReward, "syntax"), (ComplexityReward, "complexity"), (LengthReward, "length"),
                       (FormatReward, "format")]:
        rec = Recorder()
        reward = make()
        out = reward(prompts=PROMPTS, completions=BATCH, log_metric=rec, trainer_state=None, **COLUMNS)
        assert reward.__name__ == name
        assert rec.metrics[f"execrl/{name}/mean"] == pytest.approx(sum(out) / len(out))
    assert SyntaxReward(name="parses").__name__ == "parses"


def test_conversational_uses_last_assistant_message():
    conv = [{"role": "assistant", "content": "draft"}, {"role": "user", "content": "again"},
            {"role": "assistant", "content": CHAT}]
    assert FormatReward(entry_point="add")([CONV_PROMPT], [conv]) == [1.0]
    assert SyntaxReward()([CONV_PROMPT], [[{"role": "assistant", "content": [{"type": "text", "text": CLEAN}]}]]) == [1.0]


def test_parser_blowups_score_as_broken(ruff):
    deep = "1+" * 100_000 + "1"
    assert SyntaxReward()(None, [deep]) == [0.0]
    assert ruff(None, [deep]) == [-1.0]


# -- failures -----------------------------------------------------------------------------------------
def test_missing_tools_fail_at_construction(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ImportError, match="pip install ruff"):
        RuffReward()
    with pytest.raises(ImportError, match="pip install bandit"):
        SecurityReward()
    with pytest.raises(ImportError, match="pip install radon"):
        ComplexityReward()


def test_tool_failure_raises(ruff, monkeypatch):
    def broken(cmd, *args, **kwargs):
        return subprocess.CompletedProcess(cmd, 2, "", "error: something broke")

    monkeypatch.setattr(static.subprocess, "run", broken)
    with pytest.raises(RuntimeError, match="ruff failed .exit 2.: error: something broke"):
        ruff(None, [CLEAN])


def test_a_stdin_script_is_scored_whole(bandit):
    # a stdin/stdout task (its tests column says so): the top-level code is the program, so
    # an eval of input in it counts; a function task's top-level call is demo code, dropped
    from execrl.rewards import encode_tests
    from execrl.sandbox import StdioCase

    script = "```python\nprint(eval(input()))\n```"
    stdio = encode_tests((StdioCase("1\n", "1\n"),))
    assert bandit(None, [script], tests=[stdio]) == [pytest.approx(-0.3)]
    assert bandit(None, [script]) == [0.0]
    assert bandit(None, [script], tests=["{malformed"]) == [0.0]
