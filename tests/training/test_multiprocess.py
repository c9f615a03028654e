"""Recipes launched as two processes (``accelerate launch`` with our multi-GPU config and
``--num_processes 2``; on CPU that is DDP over gloo), as on a multi-GPU box: one run
directory written once, held-out sampling split between the processes and merged, one
summary, one error line, and equal weights in every process."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

for _mod in ("torch", "transformers", "trl", "datasets", "accelerate"):
    pytest.importorskip(_mod)

from tests.training._cli import EXECRL, jsonl  # noqa: E402

ACCELERATE = shutil.which("accelerate") or os.path.join(os.path.dirname(sys.executable), "accelerate")


PARAM_SUMS = os.path.join(os.path.dirname(__file__), "_param_sums.py")


# the multi-GPU accelerate config we ship, with two processes: on a CPU-only machine, gloo
CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "recipes", "accelerate", "multi-gpu.yaml")


def launch(recipe: str, *args: str, program: str = EXECRL) -> subprocess.CompletedProcess:
    cmd = [ACCELERATE, "launch", "--config_file", CONFIG, "--num_processes", "2", program, "train", recipe, *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env)


def summaries(p: subprocess.CompletedProcess) -> list[dict]:
    assert p.returncode == 0, p.stderr[-3000:]
    return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]


def assert_written_once(run_dir: str, eval_dirs: list[str], n_tasks: int, key: str = "loss", per_task: int = 1) -> None:
    steps = [r["step"] for r in jsonl(os.path.join(run_dir, "metrics.jsonl")) if key in r]
    assert steps == sorted(set(steps)) and steps, steps  # one line per step, not one per process
    for name in eval_dirs:
        d = os.path.join(run_dir, name)
        files = os.listdir(d)
        assert {"results.jsonl", "samples.jsonl"} <= set(files) and not [f for f in files if ".rank" in f], files
        rows = jsonl(os.path.join(d, "samples.jsonl"))
        assert len(rows) == n_tasks * per_task and len({r["task_id"] for r in rows}) == n_tasks
        assert len(jsonl(os.path.join(d, "results.jsonl"))) == n_tasks * per_task


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mp-sft")
    args = ("max_steps=2", "limit=6", "eval_tasks=3", "eval_max_new_tokens=8", "save_steps=1", "run_name=r",
            f"output_dir={out}")
    return out, args, launch("sft", *args)


def test_sft_on_two_processes_writes_one_run_and_one_summary(sft_run):
    out, _, p = sft_run
    [s] = summaries(p)
    assert s["steps"] == 2 and s["before"]["pass@1"] is not None and s["after"]["pass@1"] is not None
    run_dir = os.path.join(out, "r")
    assert_written_once(run_dir, ["eval-before", "eval-after"], n_tasks=3)
    evals = [r for r in jsonl(os.path.join(run_dir, "metrics.jsonl")) if "eval_before" in r or "eval_after" in r]
    assert len(evals) == 2
    assert os.path.exists(os.path.join(run_dir, "final", "model.safetensors"))
    assert sorted(x for x in os.listdir(run_dir) if x.startswith("checkpoint-")) == ["checkpoint-1", "checkpoint-2"]


def test_two_process_rerun_resumes_and_a_config_clash_is_one_line(sft_run):
    out, args, _ = sft_run
    [s] = summaries(launch("sft", *args))
    assert s["resumed_from"] == "checkpoint-2" and s["train_loss"] is None

    p = launch("sft", *[a if not a.startswith("max_steps") else "max_steps=3" for a in args])
    assert p.returncode != 0
    errors = [line for line in p.stderr.splitlines() if line.startswith("execrl: error:")]
    assert len(errors) == 1 and "different config" in errors[0], p.stderr[-2000:]


def test_lora_sft_on_two_processes_saves_one_merged_model(tmp_path):
    [s] = summaries(launch("sft", "lora=true", "max_steps=2", "limit=6", "eval_tasks=2", "eval_max_new_tokens=8",
                           "run_name=l", f"output_dir={tmp_path}"))
    final = os.path.join(tmp_path, "l", "final")
    assert s["steps"] == 2 and os.path.exists(os.path.join(final, "model.safetensors"))
    assert not os.path.exists(os.path.join(final, "adapter_config.json"))  # merged: loads without peft
    assert_written_once(os.path.join(tmp_path, "l"), ["eval-before", "eval-after"], n_tasks=2)


def test_reward_model_on_two_processes_measures_once(tmp_path):
    [s] = summaries(launch("reward_model", "max_steps=2", "limit=4", "eval_tasks=4", "samples_per_task=2",
                           "max_new_tokens=8", "run_name=rm", f"output_dir={tmp_path}"))
    assert s["steps"] == 2 and s["pairs"] > 0 and s["accuracy_after"] is not None
    rows = jsonl(os.path.join(tmp_path, "rm", "metrics.jsonl"))
    assert [sum(k in r for r in rows) for k in ("mining", "accuracy_before", "accuracy_after")] == [1, 1, 1]


def test_grpo_on_two_processes_rewards_in_each_and_logs_once(tmp_path):
    p = launch("grpo", "max_steps=2", "limit=4", "eval_tasks=2", "eval_max_new_tokens=8", "max_completion_length=8",
               "run_name=g", f"output_dir={tmp_path}")
    [s] = summaries(p)
    assert s["reward_mean_first"] is not None and s["sandbox_errors"] == 0
    assert_written_once(os.path.join(tmp_path, "g"), ["eval-before", "eval-after"], n_tasks=2)


MINING = ("limit=4", "eval_tasks=2", "samples_per_task=2", "max_new_tokens=8", "eval_max_new_tokens=8")


@pytest.mark.parametrize(("recipe", "extra", "mined"), [
    ("dpo", ("max_steps=2",), "mining"),
    ("raft", ("rounds=2", "steps_per_round=1", "include_references=true"), "round-1"),
])
def test_mining_recipes_on_two_processes_split_the_sampling(tmp_path, recipe, extra, mined):
    [s] = summaries(launch(recipe, *MINING, *extra, "run_name=m", f"output_dir={tmp_path}"))
    run_dir = os.path.join(tmp_path, "m")
    assert_written_once(run_dir, ["eval-before", "eval-after"], n_tasks=2)
    rows = jsonl(os.path.join(run_dir, mined, "samples.jsonl"))  # 4 train tasks x 2, merged from 2 shards
    assert sorted((r["task_id"], r["completion_id"]) for r in rows) == sorted({(r["task_id"], c) for r in rows
                                                                                 for c in (0, 1)})
    assert len(rows) == 8 and not [x for x in os.listdir(os.path.join(run_dir, mined)) if ".rank" in x]
    if recipe == "raft":
        assert s["kept_per_round"] == [4, 4] and os.path.exists(os.path.join(run_dir, "final", "config.json"))
    else:
        assert s["pairs"] > 0 and s["steps"] == 2


def param_sums(p: subprocess.CompletedProcess) -> list[list[str]]:
    """The weight sums each process printed at exit (tests/training/_param_sums.py)."""
    return sorted(m.split() for m in re.findall(r"param-sum (rank=\d+ [^\n]*?)(?=param-sum|\n|$)", p.stdout))


def assert_in_step(p: subprocess.CompletedProcess) -> None:
    # different data per process, one averaged gradient: the weights stay identical
    sums = param_sums(p)
    assert [rank for rank, _ in sums] == ["rank=0", "rank=1"] and sums[0][1] == sums[1][1], sums


def checkpoints(run_dir: str) -> list[str]:
    return sorted(x for x in os.listdir(run_dir) if x.startswith("checkpoint-"))


def test_ppo_on_two_processes_keeps_their_weights_equal(tmp_path):
    p = launch("ppo", "max_steps=2", "limit=4", "eval_tasks=2", "eval_max_new_tokens=8", "max_completion_length=8",
               "learning_rate=1e-3", "save_steps=1", "run_name=p", f"output_dir={tmp_path}", program=PARAM_SUMS)
    [s] = summaries(p)
    assert s["steps"] == 2 and s["reward_mean_first"] is not None
    assert_in_step(p)
    assert_written_once(os.path.join(tmp_path, "p"), ["eval-before", "eval-after"], n_tasks=2, key="policy_loss")
    assert checkpoints(os.path.join(tmp_path, "p")) == ["checkpoint-1", "checkpoint-2"]


@pytest.fixture(scope="module")
def critic_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mp-critic")
    p = launch("critic", "limit=4", "eval_tasks=2", "samples_per_task=2", "max_new_tokens=8", "eval_samples=2",
               "eval_max_new_tokens=8", "max_steps=2", "batch_size=4", "save_steps=1", "run_name=c",
               f"output_dir={out}", program=PARAM_SUMS)
    return out, p


def test_critic_on_two_processes_trains_in_step_and_measures_once(critic_run):
    out, p = critic_run
    [s] = summaries(p)
    assert_in_step(p)
    run_dir = os.path.join(out, "c")
    assert_written_once(run_dir, ["eval"], n_tasks=2, per_task=2)
    assert s["labels"]["programs"] == len(jsonl(os.path.join(run_dir, "labels.jsonl"))) == 4 * 2 + 4  # + references
    assert s["accuracy"] is not None and checkpoints(run_dir) == ["checkpoint-1", "checkpoint-2"]
    assert os.path.exists(os.path.join(run_dir, "critic", "critic.json"))


def test_critic_pg_on_two_processes_trains_in_step(critic_run, tmp_path):
    out, _ = critic_run
    critic = os.path.join(out, "c", "critic")
    p = launch("critic_pg", f"critic={critic}", "limit=4", "eval_tasks=2", "max_steps=2", "prompts_per_step=1",
               "samples_per_prompt=2", "max_new_tokens=8", "eval_max_new_tokens=8", "micro_batch_size=1",
               "learning_rate=1e-2", "save_steps=1", "run_name=pg", f"output_dir={tmp_path}", program=PARAM_SUMS)
    [s] = summaries(p)
    assert_in_step(p)
    run_dir = os.path.join(tmp_path, "pg")
    assert_written_once(run_dir, ["eval-before", "eval-after"], n_tasks=2)
    rollouts = jsonl(os.path.join(run_dir, "rollouts.jsonl"))  # per step: 2 processes x 1 prompt x (2 + greedy)
    assert [r["step"] for r in rollouts] == [1] * 6 + [2] * 6 and len({r["task_id"] for r in rollouts}) == 4
    assert s["steps"] == 2 and checkpoints(run_dir) == ["checkpoint-1", "checkpoint-2"]


def test_uneven_batches_join_every_gradient_average():
    # a process left with no sample (all sandbox errors) still joins the gradient average with
    # zero-loss passes, so the others never wait for it forever, and the weights stay equal
    script = os.path.join(os.path.dirname(__file__), "_uneven_update.py")
    cmd = [ACCELERATE, "launch", "--config_file", CONFIG, "--num_processes", "2", script]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr[-3000:]
    sums = param_sums(p)
    assert [x[0] for x in sums] == ["rank=0", "rank=1"] and sums[0][1] == sums[1][1], sums
    assert all(x[2] == "moved=True" for x in sums) and [x[3] for x in sums] == ["tokens=9", "tokens=0"]


def test_the_demo_refuses_several_processes_in_one_line(tmp_path):
    cmd = [ACCELERATE, "launch", "--config_file", CONFIG, "--num_processes", "2", EXECRL, "demo", f"out={tmp_path}/d"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env={**os.environ, "OMP_NUM_THREADS": "1"})
    errors = [line for line in p.stderr.splitlines() if line.startswith("execrl: error:")]
    assert p.returncode != 0 and len(errors) == 1 and "runs in one process" in errors[0], p.stderr[-2000:]
    assert not os.path.exists(tmp_path / "d")
