"""The SFT recipe as a user runs it: the installed ``execrl train sft`` command, on CPU
with the tiny local model (a 2-step smoke run, a resume after a simulated crash, and
config errors that stop before any work)."""

import json
import os
import shutil

import pytest

for _mod in ("torch", "transformers", "trl", "datasets"):
    pytest.importorskip(_mod)

from tests.training._cli import assert_config_error, train  # noqa: E402

SMOKE = ("max_steps=2", "limit=6", "eval_tasks=2", "eval_max_new_tokens=16", "save_steps=1", "run_name=smoke")


def run(*args):
    return train("sft", *args)


def summary(p):
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def loss_steps(run_dir):
    rows = [json.loads(x) for x in open(os.path.join(run_dir, "metrics.jsonl"), encoding="utf-8")]
    return [r["step"] for r in rows if "loss" in r]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("sft")
    p = run(*SMOKE, f"output_dir={out}")
    return out, p


def test_two_step_cpu_run_evaluates_trains_and_saves(smoke):
    out, p = smoke
    s = summary(p)
    path = s["run"]
    assert path == os.path.join(str(out), "smoke")
    assert json.load(open(os.path.join(path, "config.json")))["max_steps"] == 2
    rows = [json.loads(x) for x in open(os.path.join(path, "metrics.jsonl"), encoding="utf-8")]
    losses = [r for r in rows if "loss" in r]
    assert [r["step"] for r in losses] == [1, 2] and all(isinstance(r["loss"], float) for r in losses)
    assert os.path.exists(os.path.join(path, "final", "config.json"))
    assert os.path.exists(os.path.join(path, "final", "tokenizer_config.json"))
    for name in ("eval-before", "eval-after"):
        results = [json.loads(x) for x in open(os.path.join(path, name, "results.jsonl"), encoding="utf-8")]
        assert len(results) == 2 and all("passed" in r for r in results)
    assert "pass@1" in s["before"] and "pass@1" in s["after"]
    assert s["steps"] == 2 and s["train_examples"] == 6 and isinstance(s["train_loss"], float)
    assert s["resumed_from"] is None


def test_rerun_resumes_from_the_latest_checkpoint(smoke):
    out, p = smoke
    path = summary(p)["run"]
    # simulate a crash after checkpoint-1: what step 2 wrote is gone
    for name in ("checkpoint-2", "final", "eval-after"):
        shutil.rmtree(os.path.join(path, name))
    first_step = [x for x in open(os.path.join(path, "metrics.jsonl"), encoding="utf-8") if '"step": 1,' in x]
    s = summary(run(*SMOKE, f"output_dir={out}"))
    assert s["run"] == path and s["resumed_from"] == "checkpoint-1" and s["steps"] == 2
    assert loss_steps(path) == [1, 2]  # step 1 kept from the first run, step 2 trained again, nothing restarted
    assert [x for x in open(os.path.join(path, "metrics.jsonl"), encoding="utf-8") if '"step": 1,' in x] == first_step
    state = json.load(open(os.path.join(path, "checkpoint-2", "trainer_state.json")))
    assert state["global_step"] == 2
    assert os.path.exists(os.path.join(path, "final", "config.json")) and "pass@1" in s["after"]


@pytest.mark.parametrize("override, words", [
    ("learnig_rate=1", ["unknown key", "learning_rate"]),
    ("max_steps=abc", ["max_steps", "int"]),
    ("model=/nonexistent/model", ["/nonexistent/model", "no such file"]),
    ("max_steps=0", ["max_steps", "at least 1"]),
    ("report_to=mlflow", ["report_to", "tensorboard"]),
])
def test_bad_config_fails_with_one_line_before_any_work(tmp_path, override, words):
    assert_config_error("sft", [override], words, tmp_path)

