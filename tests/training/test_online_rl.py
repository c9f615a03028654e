"""The online-RL recipes (GRPO and RLOO share one loop) as a user runs them:
``execrl train grpo`` / ``execrl train rloo`` in a subprocess.

A 2-step CPU smoke run on the tiny local model checks the run directory (config, per-step
metrics with TRL's and execrl's reward statistics, final model, before/after evaluation) and the
printed summary; bad configs must fail with one line and exit status 2 before any work.
"""

import json
import os

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")

from tests.training._cli import assert_config_error, train

RECIPES = ["grpo", "rloo"]


@pytest.mark.parametrize("recipe", RECIPES)
def test_two_step_smoke_run(tmp_path, recipe):
    p = train(recipe, "max_steps=2", "limit=4", "eval_tasks=2", "eval_max_new_tokens=16", f"output_dir={tmp_path}",
              "run_name=smoke")
    assert p.returncode == 0, p.stderr[-3000:]
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    run = tmp_path / "smoke"
    assert summary["run"] == str(run)
    config = json.loads((run / "config.json").read_text())
    assert config["max_steps"] == 2 and config["rewards"] == ["coderl"] and config["chat"] is True

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for r in steps:
        assert -1.0 <= r["rewards/coderl/mean"] <= 1.0
        assert r["execrl/coderl/sandbox_errors"] == 0.0
        assert "execrl/coderl/pass_rate" in r and "reward" in r
        if recipe == "rloo":
            assert "kl" not in r  # beta=0 by default: no reference model

    assert (run / "final" / "config.json").exists()
    assert any(name.endswith(".safetensors") for name in os.listdir(run / "final"))
    for key in ("before", "after"):
        assert 0.0 <= summary[key]["pass@1"] <= 1.0
        assert sum(summary[key]["status_counts"].values()) == 2  # one greedy sample per held-out task
    assert summary["reward_mean_first"] == steps[0]["reward"]
    assert summary["reward_mean_last"] == steps[-1]["reward"]
    assert summary["sandbox_errors"] == 0


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["rewards=pass_fraction,nope"], "unknown reward 'nope'"),
        (["per_device_train_batch_size=6"], "must be a multiple of num_generations=4"),
        (["model=./no/such/model"], "model=./no/such/model: no such file or directory"),
        (["num_generations=1", "per_device_train_batch_size=2"], "num_generations must be at least 2"),
        (["rewards=pass_all,syntax", "reward_weights=1.0"], "1 weights for 2 rewards"),
    ],
)
@pytest.mark.parametrize("recipe", RECIPES)
def test_bad_config_is_one_line(tmp_path, recipe, overrides, expected):
    assert_config_error(recipe, overrides, [expected], tmp_path)
