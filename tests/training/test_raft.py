"""The RAFT recipe as a user runs it: the installed ``execrl train raft`` command, on CPU
with the tiny local model (a 2-round smoke run, a rerun that redoes no finished round, a
resume after a simulated crash in round 2, a round that keeps nothing, and config errors
that stop before any work)."""

import json
import os
import shutil

import pytest

for _mod in ("torch", "transformers", "trl", "datasets"):
    pytest.importorskip(_mod)

from execrl.training.raft import keep_programs  # noqa: E402 - after the skips
from tests.training._cli import assert_config_error, train  # noqa: E402

SMOKE = ("limit=4", "eval_tasks=2", "samples_per_task=2", "steps_per_round=1", "max_new_tokens=16",
         "eval_max_new_tokens=16", "include_references=true", "run_name=smoke")


def run(*args):
    return train("raft", *args)


def summary(p):
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def metrics(path):
    return [json.loads(x) for x in open(os.path.join(path, "metrics.jsonl"), encoding="utf-8")]


def mtime(path, *parts):
    return os.stat(os.path.join(path, *parts)).st_mtime_ns


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("raft")
    p = run(*SMOKE, f"output_dir={out}")
    return out, p


def test_two_round_cpu_run_samples_keeps_trains_and_saves(smoke):
    out, p = smoke
    s = summary(p)
    path = s["run"]
    assert path == os.path.join(str(out), "smoke")
    assert json.load(open(os.path.join(path, "config.json")))["rounds"] == 2
    for r in (1, 2):
        rdir = os.path.join(path, f"round-{r}")
        samples = [json.loads(x) for x in open(os.path.join(rdir, "samples.jsonl"), encoding="utf-8")]
        results = [json.loads(x) for x in open(os.path.join(rdir, "results.jsonl"), encoding="utf-8")]
        assert len(samples) == len(results) == 8 and all("passed" in x for x in results)
        assert os.path.exists(os.path.join(rdir, "model", "config.json"))
        assert json.load(open(os.path.join(rdir, "round.json")))["trained"] is True
    rows = metrics(path)
    assert [r["step"] for r in rows if "loss" in r] == [1, 2]
    rounds = [r["round"] for r in rows if "round" in r]
    assert [x["round"] for x in rounds] == [1, 2] and all(x["kept"] >= 4 for x in rounds)
    assert all(0 <= x["train_pass_rate"] <= 1 and isinstance(x["train_loss"], float) for x in rounds)
    assert [r["step"] for r in rows if "eval_before" in r] == [0] and sum("eval_after" in r for r in rows) == 1
    for name in ("config.json", "tokenizer_config.json"):
        assert os.path.exists(os.path.join(path, "final", name))
    for name in ("eval-before", "eval-after"):
        results = [json.loads(x) for x in open(os.path.join(path, name, "results.jsonl"), encoding="utf-8")]
        assert len(results) == 2
    assert "pass@1" in s["before"] and "pass@1" in s["after"]
    assert s["steps"] == 2 and len(s["kept_per_round"]) == 2 and all(k >= 4 for k in s["kept_per_round"])
    assert [x["resumed"] for x in s["rounds"]] == [False, False]


def test_rerun_redoes_no_finished_round(smoke):
    out, p = smoke
    path = summary(p)["run"]
    before_rows = metrics(path)
    stamps = {r: mtime(path, f"round-{r}", "model", "config.json") for r in (1, 2)}
    s = summary(run(*SMOKE, f"output_dir={out}"))
    assert s["run"] == path and [x["resumed"] for x in s["rounds"]] == [True, True]
    assert {r: mtime(path, f"round-{r}", "model", "config.json") for r in (1, 2)} == stamps
    assert s["kept_per_round"] == summary(p)["kept_per_round"]
    assert metrics(path) == before_rows  # replayed, not duplicated


def test_resume_after_a_crash_in_round_two_keeps_round_one(smoke):
    out, p = smoke
    path = summary(p)["run"]
    for name in ("round-2/model", "final", "eval-after"):
        shutil.rmtree(os.path.join(path, name))
    os.remove(os.path.join(path, "round-2", "round.json"))
    stamp1 = mtime(path, "round-1", "model", "config.json")
    s = summary(run(*SMOKE, f"output_dir={out}"))
    assert [x["resumed"] for x in s["rounds"]] == [True, False] and s["steps"] == 2
    assert mtime(path, "round-1", "model", "config.json") == stamp1
    assert os.path.exists(os.path.join(path, "round-2", "model", "config.json"))
    assert [r["step"] for r in metrics(path) if "loss" in r] == [1, 2]
    assert os.path.exists(os.path.join(path, "final", "config.json")) and "pass@1" in s["after"]


def test_a_round_that_keeps_nothing_is_skipped(tmp_path):
    s = summary(run("limit=2", "eval_tasks=0", "rounds=1", "samples_per_task=1", "max_new_tokens=8",
                    "temperature=0", f"output_dir={tmp_path}", "run_name=empty"))
    info = s["rounds"][0]
    if info["kept"]:  # the tiny model solved a task: nothing to check here
        pytest.skip("the tiny model passed a task")
    assert info["trained"] is False and info["steps"] == 0 and s["steps"] == 0
    assert not os.path.exists(os.path.join(s["run"], "round-1", "model"))
    assert os.path.exists(os.path.join(s["run"], "final", "config.json"))  # the base model


def test_keep_rules():
    rows = [{"task_id": "a", "passed": True, "tests_passed": 3, "tests_total": 3},
            {"task_id": "a", "passed": True, "tests_passed": 3, "tests_total": 3},
            {"task_id": "b", "passed": False, "tests_passed": 1, "tests_total": 3},
            {"task_id": "b", "passed": False, "tests_passed": 2, "tests_total": 3},
            {"task_id": "c", "passed": False, "tests_passed": 0, "tests_total": 3},
            {"task_id": "a", "passed": False, "tests_passed": 2, "tests_total": 3}]
    progs = ["pa", "pa", "pb1", "pb2", "pc", "pa2"]
    assert keep_programs(rows, progs, "passed") == [("a", "pa")]
    assert keep_programs(rows, progs, "best") == [("a", "pa"), ("b", "pb2")]


@pytest.mark.parametrize("override, words", [
    ("rounds=0", ["rounds", "at least 1"]),
    ("keep=top", ["keep", "passed", "best"]),
    ("rouns=2", ["unknown key", "rounds"]),
    ("samples_per_task=0", ["samples_per_task", "at least 1"]),
])
def test_bad_config_fails_with_one_line_before_any_work(tmp_path, override, words):
    assert_config_error("raft", [override], words, tmp_path)

