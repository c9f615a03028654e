"""The PPO recipe as a user runs it (``execrl train ppo`` in a subprocess, tiny local model on
CPU): a 2-step smoke run, a resume after a simulated crash, config errors that stop before any
work; and its pieces (completion mask, log-probs under left padding, targets, minibatch loss,
reward sum) checked against values worked out by hand."""

import json
import math
import os
import shutil

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from execrl.training import ppo, rl_math  # noqa: E402 - after the skips
from tests.training._cli import assert_config_error, jsonl, train  # noqa: E402

SMOKE = ("max_steps=2", "limit=4", "eval_tasks=2", "eval_max_new_tokens=16", "rollout_batch_size=2",
         "samples_per_prompt=2", "mini_batch_size=2", "max_completion_length=16", "save_steps=1", "run_name=smoke")
SUMMARY_KEYS = {"run", "before", "after", "reward_mean_first", "reward_mean_last", "steps", "sandbox_errors"}


def summary(p):
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("ppo")
    s = summary(train("ppo", *SMOKE, f"output_dir={out}"))
    return out, s, jsonl(os.path.join(s["run"], "metrics.jsonl"))


def test_two_step_smoke_run(smoke):
    out, s, rows = smoke
    run = os.path.join(str(out), "smoke")
    assert s["run"] == run and set(s) == SUMMARY_KEYS
    config = json.load(open(os.path.join(run, "config.json"), encoding="utf-8"))
    assert config["max_steps"] == 2 and config["rewards"] == ["coderl"] and config["chat"] is True

    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        assert -1.0 <= r["reward"] <= 1.0 and 0.0 <= r["pass_rate"] <= 1.0  # CodeRL's range
        assert r["skipped"] == 0 and r["sandbox_errors"] == 0 and r["execrl/coderl/sandbox_errors"] == 0
        for key in ("policy_loss", "value_loss", "approx_kl", "kl", "entropy", "grad_norm", "seconds"):
            assert isinstance(r[key], float) and math.isfinite(r[key]), key
        assert 0.0 <= r["clipfrac"] <= 1.0 and r["value_loss"] >= 0 and r["entropy"] > 0
        assert 1 <= r["completion_length"] <= 16
    assert rows[0]["kl"] == 0.0  # the reference is the initial policy, which step 1 samples from
    assert rows[1]["kl"] != 0.0  # ...and it stays frozen while the policy moves

    for step in (1, 2):
        names = os.listdir(os.path.join(run, f"checkpoint-{step}"))
        assert {"value_head.pt", "optimizer.pt", "model.safetensors", "trainer_state.json"} <= set(names)
    final = os.path.join(run, "final")
    model = transformers.AutoModelForCausalLM.from_pretrained(final)
    transformers.AutoTokenizer.from_pretrained(final)
    head = torch.nn.Linear(model.config.hidden_size, 1)
    head.load_state_dict(torch.load(os.path.join(final, ppo.VALUE_HEAD), weights_only=True))
    assert head.weight.abs().sum() > 0  # trained away from its zero init

    for key, name in (("before", "eval-before"), ("after", "eval-after")):
        assert 0.0 <= s[key]["pass@1"] <= 1.0
        assert sum(s[key]["status_counts"].values()) == 2  # one greedy sample per held-out task
        assert len(jsonl(os.path.join(run, name, "results.jsonl"))) == 2
    assert s["reward_mean_first"] == rows[0]["reward"] and s["reward_mean_last"] == rows[1]["reward"]
    assert s["steps"] == 2 and s["sandbox_errors"] == 0


def test_rerun_resumes_from_the_latest_checkpoint(smoke):
    out, s, rows = smoke
    run = s["run"]
    for name in ("checkpoint-2", "final", "eval-after"):  # a crash after step 1's checkpoint
        shutil.rmtree(os.path.join(run, name))
    stamp = os.stat(os.path.join(run, "checkpoint-1", "model.safetensors")).st_mtime_ns
    again = summary(train("ppo", *SMOKE, f"output_dir={out}"))
    assert again["run"] == run and again["steps"] == 2
    resumed = jsonl(os.path.join(run, "metrics.jsonl"))
    assert [r["step"] for r in resumed] == [1, 2]  # step 1 kept, not redone; step 2 redone once
    assert resumed[0] == rows[0]
    # step 2 starts from checkpoint-1's weights and optimizer and is seeded by its step: it
    # repeats the first run's step 2 (from the initial weights its losses would differ)
    assert resumed[1]["reward"] == rows[1]["reward"]
    for key in ("policy_loss", "value_loss", "kl"):
        assert resumed[1][key] == pytest.approx(rows[1][key], rel=1e-4, abs=1e-7), key
    assert os.stat(os.path.join(run, "checkpoint-1", "model.safetensors")).st_mtime_ns == stamp
    assert os.path.exists(os.path.join(run, "checkpoint-2", "value_head.pt"))
    assert os.path.exists(os.path.join(run, "final", "config.json")) and "pass@1" in again["after"]


@pytest.mark.parametrize(("overrides", "words"), [
    (["cliprange=0"], ["cliprange=0.0", "must be positive"]),
    (["rewards=pass_all,nope"], ["unknown reward 'nope'"]),
    (["model=./no/such/model"], ["model=./no/such/model: no such file or directory"]),
    (["clip_range=0.1"], ["unknown key 'clip_range'", "cliprange"]),
    (["kl_estimator=k4"], ["kl_estimator='k4'", "k1, k2, k3"]),
    (["lam=1.5"], ["lam=1.5", "between 0 and 1"]),
    (["mini_batch_size=0"], ["mini_batch_size=0", "at least 1"]),
])
def test_bad_config_is_one_line_before_any_work(tmp_path, overrides, words):
    assert_config_error("ppo", overrides, words, tmp_path)


# ----------------------------------------------------------------------------- the pieces

def test_kl_kinds_are_rl_maths():
    assert set(ppo.KL_KINDS) == set(rl_math.KL_ESTIMATORS)


def test_completion_mask_keeps_tokens_up_to_the_first_eos():
    tokens = torch.tensor([[5, 2, 0, 0], [5, 6, 7, 8], [2, 0, 0, 0], [5, 2, 2, 2], [5, 3, 9, 2]])
    expected = [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0]]
    assert ppo.completion_mask(tokens, {2, 3}).tolist() == [[bool(x) for x in row] for row in expected]


def tiny_gpt2():
    """GPT-2 learns absolute positions (unlike RoPE models, where a shift changes nothing), so
    left padding changes its log-probs unless the positions skip the padding."""
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=32, n_embd=16, n_layer=2, n_head=2, n_positions=32, pad_token_id=0)
    return transformers.GPT2LMHeadModel(config).eval()


def test_forward_logprobs_ignore_left_padding():
    model = tiny_gpt2()
    head = torch.nn.Linear(16, 1)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    prompt, completion, temperature = [3, 4, 5], [6, 7, 8, 9], 0.7
    seq = torch.tensor([prompt + completion])
    with torch.no_grad():
        lp, values, entropy = ppo.forward(model, head, seq, torch.ones_like(seq), len(prompt), temperature)
        # by hand: log softmax(logits / T) of each completion token, from the position before it
        logits = model(seq).logits[0, len(prompt) - 1 : -1] / temperature
        expected = logits.log_softmax(-1)[torch.arange(4), torch.tensor(completion)]
        padded = torch.tensor([[0, 0] + prompt + completion])
        attention = torch.tensor([[0, 0] + [1] * 7])
        lp_padded, _, _ = ppo.forward(model, head, padded, attention, len(prompt) + 2, temperature)
    torch.testing.assert_close(lp[0], expected)
    torch.testing.assert_close(lp_padded, lp, atol=1e-5, rtol=0)
    assert values.shape == (1, 4) and values.abs().max() == 0  # the zero-initialised head
    assert entropy.shape == (1, 4) and (entropy > 0).all()


def cfg(**kw):
    return ppo.Config(**kw)


def test_ppo_targets_by_hand():
    mask = torch.tensor([[True, True], [False, False]])  # row 2: a skipped (unjudged) completion
    lp = torch.tensor([[-1.0, -1.0], [-1.0, -1.0]])
    ref = torch.tensor([[-2.0, -1.0], [-3.0, -3.0]])
    values = torch.zeros(2, 2)
    scores = torch.tensor([1.0, 5.0])
    # k1 = lp - ref = [1, 0]; rewards = [-0.5 * 1, -0.5 * 0 + 1] = [-0.5, 1]; gamma = lam = 1,
    # V = 0: A_1 = 1, A_0 = -0.5 + A_1 = 0.5; returns = A + V
    adv, ret = ppo.ppo_targets(scores, lp, ref, values, mask, cfg(kl_coef=0.5, gamma=1.0, lam=1.0,
                                                                  whiten_advantages=False))
    torch.testing.assert_close(adv, torch.tensor([[0.5, 1.0], [0.0, 0.0]]))
    torch.testing.assert_close(ret, torch.tensor([[0.5, 1.0], [0.0, 0.0]]))
    # whitened over the valid tokens [0.5, 1]: mean 0.75, population std 0.25 -> [-1, 1]
    adv, _ = ppo.ppo_targets(scores, lp, ref, values, mask, cfg(kl_coef=0.5, gamma=1.0, lam=1.0))
    torch.testing.assert_close(adv, torch.tensor([[-1.0, 1.0], [0.0, 0.0]]), atol=1e-6, rtol=0)


def test_ppo_loss_is_zero_without_advantage_or_value_error():
    lp = torch.tensor([[-1.0, -2.0, -0.5]])
    mb = {"logprobs": lp.clone(), "values": torch.tensor([[0.3, 0.2, 0.1]]), "advantages": torch.zeros(1, 3),
          "returns": torch.tensor([[0.3, 0.2, 0.1]]), "mask": torch.ones(1, 3, dtype=torch.bool)}
    loss, stats = ppo.ppo_loss(lp, mb["values"].clone(), mb, cfg())
    assert loss.item() == 0.0 and stats["clipfrac"].item() == 0.0 and stats["approx_kl"].item() == 0.0


def test_ppo_loss_by_hand():
    # one token, ratio 1.5 > 1 + 0.2, A = 2: max(-2 * 1.5, -2 * 1.2) = -2.4, clipped
    # V = 0.5, V_old = 0, R = 1, clip 0.2: V_clip = 0.2; 0.5 * max(0.25, 0.64) = 0.32
    # loss = -2.4 + 0.1 * 0.32 = -2.368; a masked second token changes nothing
    mb = {"logprobs": torch.tensor([[0.0, 0.0]]), "values": torch.tensor([[0.0, 9.0]]),
          "advantages": torch.tensor([[2.0, 9.0]]), "returns": torch.tensor([[1.0, 9.0]]),
          "mask": torch.tensor([[True, False]])}
    loss, stats = ppo.ppo_loss(torch.tensor([[math.log(1.5), 3.0]]), torch.tensor([[0.5, -9.0]]), mb,
                               cfg(vf_coef=0.1, cliprange=0.2, cliprange_value=0.2))
    assert loss.item() == pytest.approx(-2.368)
    assert stats["policy_loss"].item() == pytest.approx(-2.4) and stats["value_loss"].item() == pytest.approx(0.32)
    assert stats["clipfrac"].item() == 1.0


def test_score_sums_weighted_rewards_and_keeps_none():
    seen = {}

    def first(prompts, completions, log_metric=None, **columns):
        seen.update(columns, log_metric=log_metric)
        return [1.0, None, 0.5]

    def second(prompts, completions, log_metric=None, **columns):
        return [0.5, 0.5, None]

    out = ppo.score([first, second], [1.0, 2.0], ["p"] * 3, ["a", "b", "c"], {"tests": ["t1", "t2", "t3"]},
                    log_metric=print)
    assert out == [2.0, None, None]  # a harness failure in any reward skips the completion
    assert seen == {"tests": ["t1", "t2", "t3"], "log_metric": print}


def test_report_to_tensorboard_mirrors_every_step(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    s = summary(train("ppo", *SMOKE, f"output_dir={tmp_path}", "report_to=tensorboard", "save_steps=0"))
    events = EventAccumulator(os.path.join(s["run"], "runs")).Reload()
    rewards = events.Scalars("reward")
    assert [e.step for e in rewards] == [1, 2]
    rows = [json.loads(x) for x in open(os.path.join(s["run"], "metrics.jsonl"), encoding="utf-8")]
    assert [e.value for e in rewards] == pytest.approx([r["reward"] for r in rows if "reward" in r])
    assert {"policy_loss", "value_loss", "kl", "pass_rate"} <= set(events.Tags()["scalars"])
