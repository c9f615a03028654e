"""execrl's execution rewards inside TRL: a real GRPOTrainer run on CPU, and TRL's own reward call.

The first test trains the tiny model (tests/conftest.py) for two GRPO steps on execrl-basic tasks
whose tests arrive as a dataset column, and checks what TRL passed to the rewards, what they
returned and what reached TRL's logs. The second skips training and scores hand-made completions
through TRL's ``GRPOTrainer._calculate_rewards`` itself, so the values are exactly what TRL sees.
"""

import math

import pytest

from execrl.rewards import CODERL_VALUES, AsyncExecutionReward, encode_tests, pass_all, pass_fraction, task_rows
from execrl.sandbox import SandboxPool, Status
from execrl.tasks import basic

pytest.importorskip("torch")
datasets = pytest.importorskip("datasets")
trl = pytest.importorskip("trl")

COLUMNS = ("task_id", "entry_point", "tests", "public_tests")
TRL_KWARGS = {"prompts", "completions", "completion_ids", "trainer_state", "log_metric", *COLUMNS}


class Recorder:
    """Wraps a reward function, keeping for each call TRL's arguments, the rewards and the stats."""

    def __init__(self, reward):
        self.reward = reward
        self.__name__ = reward.__name__  # TRL names the reward (and its log keys) after this
        self.calls = []

    def _keep(self, args, kwargs, out):
        self.calls.append({"args": args, "kwargs": kwargs, "out": out, "stats": dict(self.reward.last_stats)})
        return out

    def __call__(self, *args, **kwargs):
        return self._keep(args, kwargs, self.reward(*args, **kwargs))


class AsyncRecorder(Recorder):
    """The same for a coroutine reward: TRL sees an async ``__call__`` and gathers it on its event loop."""

    async def __call__(self, *args, **kwargs):
        return self._keep(args, kwargs, await self.reward(*args, **kwargs))


@pytest.fixture(scope="module")
def tasks():
    return basic.load()


def grpo_config(tmp_path):
    return trl.GRPOConfig(
        output_dir=str(tmp_path),
        # generation_batch_size (= per_device_train_batch_size * steps_per_generation, the latter
        # defaulting to gradient_accumulation_steps = 1) must be divisible by num_generations:
        # 8 completions per step = 2 prompts x 4 samples.
        num_generations=4,
        per_device_train_batch_size=8,
        max_completion_length=32,
        temperature=1.0,  # sampled, so a group's completions (and rewards) differ
        max_steps=2,
        learning_rate=1e-5,
        use_cpu=True,
        bf16=False,  # GRPOConfig turns bf16 on by default (TrainingArguments does not); fp32 on CPU
        report_to="none",
        logging_steps=1,
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
    )


def test_grpo_trains_with_execution_rewards(tiny_model, tasks, tmp_path, monkeypatch):
    chosen = [tasks[f"execrl-basic/{i}"] for i in range(4)]
    # Conversational rows: the tiny model answers a chat turn with a whole (wrong) program, so the
    # coderl values differ inside a group (syntax error vs runtime error) and GRPO gets a non-zero
    # advantage. As plain-text continuations its output collapses to the bare prompt, all "failed".
    train = datasets.Dataset.from_list(task_rows(chosen, chat=True))
    by_id = {t.task_id: t for t in chosen}
    config = grpo_config(tmp_path)

    with SandboxPool(workers=2) as pool:
        batches: list[int] = []  # sizes of the batches the sandbox actually ran
        real_run = pool.run

        def counting_run(runs, *args, **kwargs):
            batches.append(len(runs))
            return real_run(runs, *args, **kwargs)

        monkeypatch.setattr(pool, "run", counting_run)
        frac = Recorder(pass_fraction(pool=pool))
        shaped = AsyncRecorder(AsyncExecutionReward("coderl", pool=pool))
        trainer = trl.GRPOTrainer(model=tiny_model[0], reward_funcs=[frac, shaped], args=config, train_dataset=train)
        trainer.train()

    assert trainer.state.global_step == config.max_steps
    steps = [h for h in trainer.state.log_history if "loss" in h]
    assert [h["step"] for h in steps] == [1, 2]
    # One generation batch per step, both rewards called on it once.
    assert len(frac.calls) == len(shaped.calls) == config.max_steps

    batch = config.per_device_train_batch_size
    for step, (fc, sc) in enumerate(zip(frac.calls, shaped.calls, strict=True)):
        for call in (fc, sc):
            kw = call["kwargs"]
            assert call["args"] == ()  # TRL passes everything by keyword
            assert TRL_KWARGS <= set(kw), sorted(kw)
            assert kw["trainer_state"] is trainer.state
            assert kw["log_metric"] == trainer._log_metric
            for key in ("prompts", "completions", "completion_ids", *COLUMNS):
                assert len(kw[key]) == batch, key
            assert all(isinstance(i, int) for ids in kw["completion_ids"] for i in ids)
            assert all(len(ids) <= config.max_completion_length for ids in kw["completion_ids"])
            # Columns are repeated per completion, in groups of num_generations, and line up with the prompts.
            ids = kw["task_id"]
            assert all(ids[i] == ids[i - i % config.num_generations] for i in range(batch))
            for i, task_id in enumerate(ids):
                task = by_id[task_id]
                assert kw["prompts"][i] == [{"role": "user", "content": task.prompt}]
                assert kw["entry_point"][i] == task.entry_point
                assert kw["tests"][i] == encode_tests(task.tests)
                assert kw["public_tests"][i] == encode_tests(task.public_tests)
                [message] = kw["completions"][i]
                assert message["role"] == "assistant" and isinstance(message["content"], str)
        assert fc["kwargs"]["completions"] == sc["kwargs"]["completions"]

        fr, sr = fc["out"], sc["out"]
        assert len(fr) == len(sr) == batch
        assert all(type(r) is float and 0.0 <= r <= 1.0 for r in fr), fr
        assert all(type(r) is float and r in set(CODERL_VALUES.values()) for r in sr), sr
        for f, s in zip(fr, sr, strict=True):
            assert (f == 1.0) == (s == 1.0)
            assert s != -1.0 or f == 0.0  # what does not compile passes nothing

        # TRL's own reward logging matches what the rewards returned ...
        logged = steps[step]
        if logged["frac_reward_zero_std"] < 1.0:  # some group's rewards differed: GRPO had a signal to follow
            assert logged["grad_norm"] > 0.0
        assert logged["rewards/pass_fraction/mean"] == pytest.approx(sum(fr) / batch, abs=1e-6)
        assert logged["rewards/coderl/mean"] == pytest.approx(sum(sr) / batch, abs=1e-6)
        # ... and execrl's metrics reached the same log entry, unprefixed in train mode, one per stat.
        expected = {f"execrl/{name}/{k}": v for name, call in (("pass_fraction", fc), ("coderl", sc))
                    for k, v in call["stats"].items()}
        assert {k for k in logged if k.startswith("execrl/")} == set(expected)
        for key, value in expected.items():
            assert logged[key] == pytest.approx(value, abs=1e-6), key
        assert logged["execrl/pass_fraction/reward_mean"] == pytest.approx(sum(fr) / batch, abs=1e-6)
        assert logged["execrl/coderl/sandbox_errors"] == logged["execrl/pass_fraction/sandbox_errors"] == 0.0
        shares = [v for k, v in logged.items() if k.startswith("execrl/coderl/status/")]
        assert math.isclose(sum(shares), 1.0)

    completions = config.max_steps * batch
    # Identical answers to one task (the tiny model often gives empty ones) must not run twice.
    repeats = sum(batch - len({(t, m[0]["content"]) for t, m in zip(kw["task_id"], kw["completions"], strict=True)})
                  for kw in (c["kwargs"] for c in frac.calls))
    for reward in (frac.reward, shaped.reward):
        assert reward.totals == {"completions": completions, "sandbox_errors": 0}
        # Every completion is looked up twice (hidden and public tests); each miss ran once and was kept.
        cache = reward.cache
        assert cache.hits + cache.misses == 2 * completions
        assert len(cache) == cache.misses
        assert cache.hits >= 2 * repeats
    assert sum(batches) == frac.reward.cache.misses + shaped.reward.cache.misses


# Hand-made answers: (label, chat answer, plain-text continuation of the prompt, local stand-in or None).
ANSWERS = {
    "execrl-basic/0": [
        ("correct", "def sum_list(nums):\n    return sum(nums)\n", "    return sum(nums)\n", None),
        ("wrong", "def sum_list(nums):\n    return sum(x for x in nums if x > 0)\n",
         "    return sum(x for x in nums if x > 0)\n", lambda nums: sum(x for x in nums if x > 0)),
        ("syntax_error", "def sum_list(nums):\n    return sum(nums\n", "    return sum(nums\n", None),
        ("error", "def sum_list(nums):\n    raise ValueError(nums)\n", "    raise ValueError(nums)\n", None),
        ("lying_eq", "class A:\n    def __eq__(s, o): return True\n\n\ndef sum_list(nums):\n    return A()\n",
         "    return A()\n\n\nclass A:\n    def __eq__(s, o): return True\n", None),
    ],
    "execrl-basic/1": [
        ("correct", "def reverse_string(s):\n    return s[::-1]\n", "    return s[::-1]\n", None),
        ("wrong", "def reverse_string(s):\n    return s[::-1].strip()\n", "    return s[::-1].strip()\n",
         lambda s: s[::-1].strip()),
        ("syntax_error", "def reverse_string(s)\n    return s[::-1]\n", "    return s[::-1]]\n", None),
        ("error", "def reverse_string(s):\n    return s[::-1] + 1\n", "    return s[::-1] + 1\n", None),
        ("lying_eq", "class A:\n    def __eq__(s, o): return True\n\n\ndef reverse_string(s):\n    return A()\n",
         "    return A()\n\n\nclass A:\n    def __eq__(s, o): return True\n", None),
    ],
}
STATUS = {"correct": "passed", "wrong": "failed", "syntax_error": "syntax_error", "error": "error", "lying_eq": "failed"}


@pytest.mark.parametrize("chat", [True, False], ids=["conversational", "standard"])
def test_rewards_as_trl_calls_them(tiny_model, tasks, tmp_path, chat):
    inputs, completions, expected = [], [], {"pass_all": [], "pass_fraction": [], "coderl": []}
    for task_id, answers in ANSWERS.items():
        task = tasks[task_id]
        [row] = task_rows([task], chat=chat)
        for label, program, continuation, stand_in in answers:
            inputs.append(dict(row))
            fence = f"Here you go:\n```python\n{program}```\nDone."
            completions.append([{"role": "assistant", "content": fence}] if chat else continuation)
            fraction = {"correct": 1.0}.get(label, 0.0)
            if stand_in is not None:  # the wrong answers pass some hidden tests, not all
                fraction = sum(stand_in(*c.args) == c.expected for c in task.tests) / len(task.tests)
                assert 0.0 < fraction < 1.0
            expected["pass_all"].append(float(label == "correct"))
            expected["pass_fraction"].append(fraction)
            expected["coderl"].append(CODERL_VALUES[Status(STATUS[label])])
    prompts = [x["prompt"] for x in inputs]  # what GRPOTrainer._generate_and_score_completions passes
    train = datasets.Dataset.from_list(task_rows([tasks[t] for t in ANSWERS], chat=chat))

    with SandboxPool(workers=2) as pool:
        funcs = [pass_all(pool=pool), pass_fraction(pool=pool), AsyncExecutionReward("coderl", pool=pool)]
        trainer = trl.GRPOTrainer(model=tiny_model[0], reward_funcs=funcs, args=grpo_config(tmp_path),
                                  train_dataset=train)
        ids = [[0]] * len(completions)  # token ids of the completions: execution rewards ignore them
        rewards = trainer._calculate_rewards(inputs, prompts, completions, ids)

    assert rewards.shape == (len(completions), len(funcs))
    for j, name in enumerate(["pass_all", "pass_fraction", "coderl"]):
        assert rewards[:, j].tolist() == pytest.approx(expected[name], abs=1e-6), name
    # log_metric collected execrl's stats for the logging step, keyed by the reward's name.
    pending = trainer._pending_metrics
    n = len(completions)
    for name in ("pass_all", "pass_fraction", "coderl"):
        assert pending[f"execrl/{name}/sandbox_errors"] == [0.0]
        assert pending[f"execrl/{name}/pass_rate"] == [pytest.approx(2 / n)]
        for status in ("passed", "syntax_error", "error"):
            assert pending[f"execrl/{name}/status/{status}"] == [pytest.approx(2 / n)], status
        assert pending[f"execrl/{name}/status/failed"] == [pytest.approx(4 / n)]
    assert all(f.totals == {"completions": n, "sandbox_errors": 0} for f in funcs)
