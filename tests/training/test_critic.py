"""The critic recipes as a user runs them: ``execrl train critic`` and ``execrl train critic_pg``
in a subprocess, on CPU with the tiny local model (2-step smoke runs, the second using the
critic of the first; resumes after a simulated crash), config errors that stop before any work,
and the math checked by hand: outcome labels, max-pooling, class weights, ranking metrics,
advantages and the critic-weighted policy-gradient loss."""

import json
import math
import os
import shutil

import pytest

for _mod in ("torch", "transformers", "trl", "datasets"):
    pytest.importorskip(_mod)

import torch  # noqa: E402 - after the skips

from execrl.sandbox import Status  # noqa: E402
from execrl.training.critic import (  # noqa: E402
    OUTCOMES,
    Critic,
    balanced_class_weights,
    classification_metrics,
    labelled_rows,
    masked_max_pool,
    outcome_class,
    ranking_metrics,
)
from execrl.training.critic_pg import coderl_advantages  # noqa: E402
from execrl.training.rl_math import critic_weighted_pg_loss  # noqa: E402
from tests.training._cli import assert_config_error, jsonl, train  # noqa: E402

CRITIC = ("limit=4", "eval_tasks=2", "samples_per_task=2", "max_new_tokens=16", "eval_samples=2",
          "eval_max_new_tokens=16", "max_steps=2", "batch_size=4", "save_steps=1", "run_name=smoke")
PG = ("limit=4", "eval_tasks=2", "prompts_per_step=2", "samples_per_prompt=2", "max_new_tokens=16",
      "eval_max_new_tokens=16", "max_steps=2", "save_steps=1", "run_name=smoke")


def summary(p):
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def critic_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("critic")
    return out, summary(train("critic", *CRITIC, f"output_dir={out}"))


@pytest.fixture(scope="module")
def pg_run(tmp_path_factory, critic_run):
    out = tmp_path_factory.mktemp("critic_pg")
    s = critic_run[1]
    base = os.path.join(s["run"], "tiny-base")  # the critic's own base model: same tokenizer, no second build
    got = summary(train("critic_pg", *PG, f"critic={s['critic']}", f"model={base}", f"output_dir={out}"))
    return out, {**got, "critic": s["critic"], "model": base}


def test_two_step_critic_run_labels_trains_saves_and_ranks(critic_run):
    out, s = critic_run
    path = s["run"]
    assert path == os.path.join(str(out), "smoke") and s["critic"] == os.path.join(path, "critic")
    results = jsonl(os.path.join(path, "samples", "results.jsonl"))
    assert len(results) == 8 and len(jsonl(os.path.join(path, "samples", "samples.jsonl"))) == 8
    labels = jsonl(os.path.join(path, "labels.jsonl"))
    sampled = [r for r in labels if r["source"] == "sample"]
    kept = [r for r in results if r["status"] != "sandbox_error"]
    assert [r["label"] for r in sampled] == [outcome_class(r["status"]) for r in kept]
    assert [r["status"] for r in sampled] == [r["status"] for r in kept]
    refs = [r for r in labels if r["source"] == "reference"]
    ref_results = jsonl(os.path.join(path, "samples", "references-results.jsonl"))
    assert len(refs) == len(ref_results) == 4 and all(r["outcome"] == "passed" for r in refs)  # references pass
    assert all(r["outcome"] == OUTCOMES[r["label"]] for r in labels)
    assert s["labels"]["programs"] == len(labels) and sum(s["labels"][c] for c in OUTCOMES) == len(labels)

    steps = [r for r in jsonl(os.path.join(path, "metrics.jsonl")) if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2] and all(math.isfinite(r["loss"]) for r in steps)
    assert os.path.isdir(os.path.join(path, "checkpoint-2")) and s["steps"] == 2 and s["resumed_from"] is None
    for key in ("accuracy", "balanced_accuracy", "majority_accuracy", "ranked_pass@1", "random_pass@1",
                "oracle_pass@n"):
        assert 0.0 <= s[key] <= 1.0, key
    assert s["random_pass@1"] <= s["oracle_pass@n"] and s["ranked_pass@1"] <= s["oracle_pass@n"]
    assert sum(map(sum, s["confusion"])) == s["eval_samples"] == 4
    report = json.load(open(os.path.join(path, "eval", "critic_eval.json")))
    assert report["accuracy"] == s["accuracy"] and report["tasks"] == 2
    assert len(jsonl(os.path.join(path, "eval", "predictions.jsonl"))) == 4

    critic = Critic.load(s["critic"])
    probs = critic.predict(["def f(x):\n", "def g():\n"], ["    return x\n", "    return (\n"])
    assert probs.shape == (2, 4) and torch.allclose(probs.sum(-1), torch.ones(2)) and (probs >= 0).all()
    assert torch.allclose(critic.pass_probability(["def f(x):\n"], ["    return x\n"]), probs[:1, 3])
    q = critic.token_scores("def f(x):\n", "    return x\n", 2)
    n = len(critic.tokenizer.encode("    return x\n", add_special_tokens=False))
    assert q.shape == (n,) and ((q > 0) & (q < 1)).all()


def test_critic_resumes_training_from_its_checkpoint_without_resampling(critic_run):
    out, s = critic_run
    path = s["run"]
    stamp = os.stat(os.path.join(path, "samples", "samples.jsonl")).st_mtime_ns
    rows = jsonl(os.path.join(path, "metrics.jsonl"))
    for name in ("checkpoint-2", "critic"):  # as if killed during step 2
        shutil.rmtree(os.path.join(path, name))
    again = summary(train("critic", *CRITIC, f"output_dir={out}"))
    assert again["run"] == path and again["resumed_from"] == "checkpoint-1"
    assert os.stat(os.path.join(path, "samples", "samples.jsonl")).st_mtime_ns == stamp  # nothing resampled
    assert jsonl(os.path.join(path, "metrics.jsonl")) == rows  # step 2 redone identically, nothing logged twice
    assert again["accuracy"] == s["accuracy"] and again["labels"] == s["labels"]


def test_two_step_critic_pg_run_updates_saves_and_evaluates(pg_run):
    out, s = pg_run
    path = s["run"]
    assert path == os.path.join(str(out), "smoke") and s["weighting"] == "critic" and s["baseline"] == "greedy"
    rows = jsonl(os.path.join(path, "metrics.jsonl"))
    steps = [r for r in rows if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for r in steps:
        assert -1.0 <= r["reward"] <= 1.0 and 0.0 <= r["pass_rate"] <= 1.0 and r["sandbox_errors"] == 0
        assert 0.0 < r["critic_weight_mean"] < 1.0 and r["tokens"] > 0
    rollouts = jsonl(os.path.join(path, "rollouts.jsonl"))
    assert len(rollouts) == 2 * (2 * 2 + 2)  # per step: 2 prompts x 2 samples, and a greedy baseline per prompt
    values = {"passed": 1.0, "failed": -0.3, "syntax_error": -1.0}
    assert all(r["reward"] == values.get(r["status"], -0.6) for r in rollouts)
    assert s["reward_mean_first"] == steps[0]["reward"] and s["reward_mean_last"] == steps[-1]["reward"]
    assert os.path.exists(os.path.join(path, "final", "config.json"))
    for key in ("before", "after"):
        assert 0.0 <= s[key]["pass@1"] <= 1.0 and sum(s[key]["status_counts"].values()) == 2
    assert [r["step"] for r in rows if "eval_before" in r] == [0] and sum("eval_after" in r for r in rows) == 1


def test_critic_pg_resumes_from_its_checkpoint_and_redoes_the_same_steps(pg_run):
    out, s = pg_run
    path = s["run"]
    rows, rollouts = jsonl(os.path.join(path, "metrics.jsonl")), jsonl(os.path.join(path, "rollouts.jsonl"))
    for name in ("checkpoint-2", "final"):  # as if killed during step 2
        shutil.rmtree(os.path.join(path, name))
    again = summary(train("critic_pg", *PG, f"critic={s['critic']}", f"model={s['model']}", f"output_dir={out}"))
    assert again["resumed_from"] == "checkpoint-1" and again["after"] == s["after"]
    assert jsonl(os.path.join(path, "metrics.jsonl")) == rows
    assert jsonl(os.path.join(path, "rollouts.jsonl")) == rollouts


def test_outcome_classes_of_every_status():
    assert OUTCOMES == ("compile_error", "runtime_error", "failed_test", "passed")
    expected = {"syntax_error": 0, "error": 1, "timeout": 1, "memory_limit": 1, "output_limit": 1, "crashed": 1,
                "failed": 2, "passed": 3, "sandbox_error": None}
    assert {s.value: outcome_class(s) for s in Status} == expected
    assert outcome_class("timeout") == 1 and outcome_class(Status.PASSED) == 3


def test_labelled_rows_skip_sandbox_errors(tmp_path):
    statuses = ["passed", "sandbox_error", "timeout", "syntax_error", "failed"]
    with open(tmp_path / "s.jsonl", "w") as f, open(tmp_path / "r.jsonl", "w") as g:
        for i, st in enumerate(statuses):
            f.write(json.dumps({"task_id": "t", "completion_id": i, "completion": f"c{i}"}) + "\n")
            g.write(json.dumps({"task_id": "t", "status": st, "passed": st == "passed"}) + "\n")
    rows, skipped = labelled_rows(str(tmp_path / "s.jsonl"), str(tmp_path / "r.jsonl"))
    assert skipped == 1
    assert [(r["completion"], r["label"], r["outcome"]) for r in rows] == [
        ("c0", 3, "passed"), ("c2", 1, "runtime_error"), ("c3", 0, "compile_error"), ("c4", 2, "failed_test")]


def test_masked_max_pool_by_hand():
    x = torch.tensor([[[1.0, -5.0], [3.0, -7.0], [9.0, 9.0]],
                      [[-2.0, 4.0], [0.5, 1.0], [8.0, 8.0]]])
    mask = torch.tensor([[1, 1, 0], [0, 1, 0]])
    assert torch.equal(masked_max_pool(x, mask), torch.tensor([[3.0, -5.0], [0.5, 1.0]]))
    assert torch.equal(masked_max_pool(x, torch.zeros(2, 3)), torch.zeros(2, 2))  # no valid token: 0


def test_critic_weighted_pg_loss_by_hand():
    logp = torch.tensor([[-1.0, -2.0, -4.0], [-0.5, -3.0, -9.0]])
    q = torch.tensor([[0.5, 1.0, 0.7], [0.2, 0.4, 0.3]])
    adv = torch.tensor([2.0, -1.0])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    # row 0: -2 * (0.5*-1 + 1.0*-2) = 5.0; row 1: +1 * (0.2*-0.5 + 0.4*-3 + 0.3*-9) = -4.0; 5 tokens
    assert critic_weighted_pg_loss(logp, q, adv, mask).item() == pytest.approx((5.0 - 4.0) / 5)
    # plain weights and no mask: -(2*(-7) + -1*(-12.5)) / 6
    assert critic_weighted_pg_loss(logp, torch.ones_like(q), adv).item() == pytest.approx(1.5 / 6)
    logp_inf = logp.clone()
    logp_inf[0, 2] = -math.inf  # padding may hold -inf: masked out, not NaN
    assert critic_weighted_pg_loss(logp_inf, q, adv, mask).item() == pytest.approx(0.2)
    grad = logp.clone().requires_grad_()
    critic_weighted_pg_loss(grad, q, adv, mask).backward()
    # d loss / d logp = -A * q * mask / 5
    assert torch.allclose(grad.grad, torch.tensor([[-0.2, -0.4, 0.0], [0.04, 0.08, 0.06]]))
    with pytest.raises(ValueError, match="advantages must be"):
        critic_weighted_pg_loss(logp, q, adv[:1], mask)


def test_coderl_advantages_greedy_and_mean_baselines():
    r = torch.tensor([[1.0, -0.3, math.nan], [-1.0, -0.6, -0.3]], dtype=torch.float64)
    greedy = torch.tensor([-0.3, math.nan], dtype=torch.float64)
    assert torch.allclose(coderl_advantages(r, greedy), torch.tensor([[1.3, 0.0, 0.0], [0.0, 0.0, 0.0]],
                                                                     dtype=torch.float64))
    m0, m1 = (1.0 - 0.3) / 2, (-1.0 - 0.6 - 0.3) / 3  # group means over the valid rewards
    assert torch.allclose(coderl_advantages(r), torch.tensor([[1.0 - m0, -0.3 - m0, 0.0],
                                                              [-1.0 - m1, -0.6 - m1, -0.3 - m1]], dtype=torch.float64))


def test_class_weights_classification_and_ranking_by_hand():
    assert balanced_class_weights([2, 2, 2, 3]) == [0.0, 0.0, 4 / 6, 2.0]  # N / (K * n_c), K = 2 classes present
    m = classification_metrics([0, 2, 2, 3], [0, 2, 0, 2], majority=2)
    assert m["accuracy"] == 0.5 and m["majority_accuracy"] == 0.5
    assert m["balanced_accuracy"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert m["confusion"] == [[1, 0, 0, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 1, 0]]
    got = ranking_metrics(["a", "a", "a", "b", "b", "c"], [False, True, False, True, False, False],
                          [0.9, 0.8, 0.1, 0.5, 0.5, 0.3])
    # a: top (0.9) fails, 1/3 pass, one passes; b: tie -> the first (passes), 1/2; c: none
    assert got == {"tasks": 3, "ranked_pass@1": pytest.approx(1 / 3), "random_pass@1": pytest.approx((1 / 3 + 1 / 2) / 3),
                   "oracle_pass@n": pytest.approx(2 / 3)}


@pytest.mark.parametrize("recipe, overrides, words", [
    ("critic_pg", [], ["critic", "required", "execrl train critic"]),
    ("critic_pg", ["critic=/no/such/critic"], ["critic=/no/such/critic", "no such directory"]),
    ("critic_pg", ["critic=/tmp"], ["critic=/tmp", "not a critic directory"]),
    ("critic_pg", ["weighting=plain", "baseline=median"], ["baseline", "greedy", "mean"]),
    ("critic_pg", ["weighting=soft"], ["weighting", "critic", "plain"]),
    ("critic", ["samples_per_tsk=2"], ["unknown key", "samples_per_task"]),
    ("critic", ["lora=true"], ["lora=true", "not supported"]),
    ("critic", ["batch_size=0"], ["batch_size", "at least 1"]),
])
def test_bad_config_fails_with_one_line_before_any_work(tmp_path, recipe, overrides, words):
    assert_config_error(recipe, overrides, words, tmp_path)
