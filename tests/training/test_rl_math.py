"""RL math checked against values computed by hand (the arithmetic is in the comments)."""

import math

import pytest

torch = pytest.importorskip("torch")

from execrl.training.rl_math import (  # noqa: E402
    gae,
    grpo_advantages,
    kl_penalty,
    kl_shaped_rewards,
    masked_mean,
    ppo_policy_loss,
    ppo_value_loss,
    rloo_advantages,
    whiten,
)

NAN = float("nan")


def t(rows):
    return torch.tensor(rows, dtype=torch.float64)


def close(actual, expected, atol=1e-9):
    torch.testing.assert_close(
        actual, t(expected) if not isinstance(expected, torch.Tensor) else expected, atol=atol, rtol=0
    )


# --- GAE -------------------------------------------------------------------------------
# r = [0, 0, 1], V = [0.5, 0.6, 0.7], terminal (bootstrap 0), gamma 0.9, lam 0.95
# (gamma * lam = 0.855):
#   t=2: delta = 1 + 0.9*0   - 0.7 = 0.3                    A2 = 0.3
#   t=1: delta = 0 + 0.9*0.7 - 0.6 = 0.03                   A1 = 0.03 + 0.855*0.3    = 0.2865
#   t=0: delta = 0 + 0.9*0.6 - 0.5 = 0.04                   A0 = 0.04 + 0.855*0.2865 = 0.2849575
#   returns = A + V = [0.7849575, 0.8865, 1.0]
GAE_ADV = [0.2849575, 0.2865, 0.3]
GAE_RET = [0.7849575, 0.8865, 1.0]


def test_gae_by_hand_terminal():
    adv, ret = gae(t([[0, 0, 1]]), t([[0.5, 0.6, 0.7]]), t([[1, 1, 1]]), gamma=0.9, lam=0.95)
    close(adv, [GAE_ADV])
    close(ret, [GAE_RET])


def test_gae_bootstrap_column():
    # Same with V_3 = 1.0 as bootstrap:
    #   t=2: delta = 1 + 0.9*1.0 - 0.7 = 1.2                   A2 = 1.2
    #   t=1: delta = 0.03                                       A1 = 0.03 + 0.855*1.2   = 1.056
    #   t=0: delta = 0.04                                       A0 = 0.04 + 0.855*1.056 = 0.94288
    adv, ret = gae(t([[0, 0, 1]]), t([[0.5, 0.6, 0.7, 1.0]]), None, gamma=0.9, lam=0.95)
    close(adv, [[0.94288, 1.056, 1.2]])
    close(ret, [[1.44288, 1.656, 1.9]])


def test_gae_bootstrap_zero_equals_no_bootstrap():
    a1, r1 = gae(t([[0, 0, 1]]), t([[0.5, 0.6, 0.7, 0.0]]), gamma=0.9, lam=0.95)
    a2, r2 = gae(t([[0, 0, 1]]), t([[0.5, 0.6, 0.7]]), gamma=0.9, lam=0.95)
    close(a1, a2)
    close(r1, r2)


def test_gae_right_padding_is_zero_and_ignored():
    # Padding carries garbage reward 5 and value 9: the result is the hand example plus a 0.
    adv, ret = gae(t([[0, 0, 1, 5]]), t([[0.5, 0.6, 0.7, 9]]), t([[1, 1, 1, 0]]), gamma=0.9, lam=0.95)
    close(adv, [GAE_ADV + [0.0]])
    close(ret, [GAE_RET + [0.0]])


def test_gae_right_padding_bootstrap_meets_last_valid_token():
    # Values [B, T+1] with padding: the bootstrap 1.0 is used after the last valid token,
    # so this equals test_gae_bootstrap_column plus a 0.
    adv, _ = gae(t([[0, 0, 1, 5]]), t([[0.5, 0.6, 0.7, 9, 1.0]]), t([[1, 1, 1, 0]]), gamma=0.9, lam=0.95)
    close(adv, [[0.94288, 1.056, 1.2, 0.0]])


def test_gae_skips_masked_positions_in_the_middle():
    # A masked token between valid ones (e.g. tool output) is transparent: the valid
    # positions 0, 2, 3 see exactly the 1x3 hand example.
    adv, ret = gae(t([[0, 7, 0, 1]]), t([[0.5, 9, 0.6, 0.7]]), torch.tensor([[True, False, True, True]]), 0.9, 0.95)
    close(adv, [[GAE_ADV[0], 0.0, GAE_ADV[1], GAE_ADV[2]]])
    close(ret, [[GAE_RET[0], 0.0, GAE_RET[1], GAE_RET[2]]])


def test_gae_rows_are_independent_and_shapes():
    torch.manual_seed(0)
    r, v = torch.randn(4, 6), torch.randn(4, 7)
    mask = torch.ones(4, 6)
    mask[1, 3:] = 0
    adv, ret = gae(r, v, mask, gamma=0.99, lam=0.9)
    assert adv.shape == ret.shape == (4, 6)
    assert torch.all(adv[1, 3:] == 0) and torch.all(ret[1, 3:] == 0)
    a0, _ = gae(r[2:3], v[2:3], mask[2:3], gamma=0.99, lam=0.9)
    close(adv[2:3], a0)


def test_gae_gamma_lam_one_is_return_to_go_minus_value():
    # gamma = lam = 1: A_t = sum_{k>=t} r_k - V_t; r = [1, 2, 3], V = [1, 1, 1] -> [5, 4, 2]
    adv, ret = gae(t([[1, 2, 3]]), t([[1, 1, 1]]), gamma=1.0, lam=1.0)
    close(adv, [[5, 4, 2]])
    close(ret, [[6, 5, 3]])


def test_gae_rejects_bad_values_shape():
    with pytest.raises(ValueError, match="values"):
        gae(t([[0, 0, 1]]), t([[0.5, 0.6]]))


# --- whiten / masked_mean --------------------------------------------------------------
def test_masked_mean_and_empty_mask():
    close(masked_mean(t([[1, 2, 30]]), t([[1, 1, 0]])), t(1.5))
    close(masked_mean(t([[1, 2, 30]]), t([[0, 0, 0]])), t(0.0))


def test_whiten_by_hand():
    # valid x = [1, 2, 3]: mean 2, population var (1 + 0 + 1) / 3 = 2/3, std = sqrt(2/3)
    # -> [-1/sqrt(2/3), 0, 1/sqrt(2/3)] = [-1.2247449, 0, 1.2247449]; masked 100 -> 0
    s = 1 / math.sqrt(2 / 3)
    x, mask = t([[1, 2, 3, 100]]), t([[1, 1, 1, 0]])
    close(whiten(x, mask), [[-s, 0, s, 0]], atol=1e-6)
    # shift_mean=False adds the mean 2 back
    close(whiten(x, mask, shift_mean=False), [[2 - s, 2, 2 + s, 0]], atol=1e-6)


def test_whiten_unit_stats():
    torch.manual_seed(0)
    x = torch.randn(3, 8, dtype=torch.float64) * 5 + 3
    w = whiten(x, torch.ones(3, 8))
    assert abs(w.mean().item()) < 1e-9
    assert abs(w.var(unbiased=False).item() - 1) < 1e-6


# --- PPO losses ------------------------------------------------------------------------
def test_ppo_policy_loss_one_clipped_one_not():
    # eps = 0.2. Token a: ratio 1.5, A = +1 -> unclipped -1.5, clipped -1.2*1 = -1.2,
    #   max = -1.2 (clip active). Token b: ratio 1.1, A = -2 -> unclipped 2.2, clipped 2.2
    #   (1.1 inside [0.8, 1.2]) -> 2.2. Token c is masked (ratio e^3, A = 100: ignored).
    # loss = (-1.2 + 2.2) / 2 = 0.5, clipfrac = 1/2
    # approx_kl (k3: rho - 1 - log rho) = ((0.5 - ln 1.5) + (0.1 - ln 1.1)) / 2
    #   = (0.0945349 + 0.0046898) / 2 = 0.0496124
    old = t([[0.0, 0.0, 0.0]])
    logp = t([[math.log(1.5), math.log(1.1), 3.0]]).requires_grad_()
    adv = t([[1.0, -2.0, 100.0]])
    mask = t([[1, 1, 0]])
    loss, stats = ppo_policy_loss(logp, old, adv, mask, clip_eps=0.2)
    close(loss.detach(), t(0.5))
    close(stats["clipfrac"], t(0.5))
    close(stats["approx_kl"], t(((0.5 - math.log(1.5)) + (0.1 - math.log(1.1))) / 2))
    assert not stats["approx_kl"].requires_grad
    # d loss / d logp: clipped token a -> 0; token b: d(-A rho)/dlogp / 2 = 2*1.1/2 = 1.1; masked c -> 0
    loss.backward()
    close(logp.grad, [[0.0, 1.1, 0.0]])


def test_ppo_policy_loss_low_side_clip_and_on_policy():
    # ratio 0.5, A = -1: unclipped 0.5, clipped 0.8*1 = 0.8 -> 0.8 (clipped); loss 0.8
    loss, stats = ppo_policy_loss(t([[math.log(0.5)]]), t([[0.0]]), t([[-1.0]]), None, clip_eps=0.2)
    close(loss, t(0.8))
    close(stats["clipfrac"], t(1.0))
    # on-policy (ratio 1): loss = -mean(A), nothing clipped, kl 0
    loss, stats = ppo_policy_loss(t([[0.3, -1.0]]), t([[0.3, -1.0]]), t([[2.0, 4.0]]), t([[1, 1]]))
    close(loss, t(-3.0))
    close(stats["clipfrac"], t(0.0))
    close(stats["approx_kl"], t(0.0))


def test_ppo_value_loss_by_hand():
    # eps 0.2. Token 1: V 1.0, V_old 0.5, R 1.0: unclipped (1.0-1.0)^2 = 0;
    #   V_clip = 0.5 + 0.2 = 0.7 -> (0.7-1.0)^2 = 0.09; max 0.09.
    # Token 2: V 0.6, V_old 0.5, R 0: unclipped 0.36; V_clip = 0.6 (inside) -> 0.36.
    # Token 3 masked. loss = 0.5 * (0.09 + 0.36) / 2 = 0.1125
    loss = ppo_value_loss(t([[1.0, 0.6, 50.0]]), t([[0.5, 0.5, 0.0]]), t([[1.0, 0.0, 0.0]]), t([[1, 1, 0]]), 0.2)
    close(loss, t(0.1125))


# --- KL --------------------------------------------------------------------------------
def test_kl_estimators_two_tokens():
    # pi = [0.5, 0.25], pi_ref = [0.25, 0.5]; log r = log(pi_ref / pi) = [-ln 2, +ln 2], r = [0.5, 2]
    # k1 = -log r        = [ ln 2, -ln 2]            = [0.6931472, -0.6931472]
    # k2 = 0.5 (log r)^2 = [0.5 ln^2 2, same]        = [0.2402265, 0.2402265]
    # k3 = r - 1 - log r = [-0.5 + ln 2, 1 - ln 2]   = [0.1931472, 0.3068528]
    ln2 = math.log(2)
    logp, ref = t([[math.log(0.5), math.log(0.25)]]), t([[math.log(0.25), math.log(0.5)]])
    close(kl_penalty(logp, ref, "k1"), [[ln2, -ln2]])
    close(kl_penalty(logp, ref, "k2"), [[0.5 * ln2**2, 0.5 * ln2**2]])
    close(kl_penalty(logp, ref, "k3"), [[-0.5 + ln2, 1 - ln2]])
    assert torch.all(kl_penalty(logp, logp, "k3") == 0)
    with pytest.raises(ValueError, match="k4"):
        kl_penalty(logp, ref, "k4")


def test_kl_shaped_rewards_score_at_last_valid_token():
    # beta 0.1, k1 = logp - ref.
    # Row 0: k1 = [0.5, -0.2, 0.3], mask [1, 1, 0] -> [-0.05, +0.02 + score 2, 0]
    # Row 1: fully masked -> all 0, score 3 dropped.
    # Row 2: k1 = [0, 0, 0.1], mask [1, 1, 1] -> [0, 0, -0.01 + score 1]
    logp = t([[0.5, -0.2, 0.3], [1.0, 1.0, 1.0], [0.0, 0.0, 0.1]])
    ref = torch.zeros_like(logp)
    mask = t([[1, 1, 0], [0, 0, 0], [1, 1, 1]])
    rewards = kl_shaped_rewards(t([2.0, 3.0, 1.0]), logp, ref, mask, beta=0.1)
    close(rewards, [[-0.05, 2.02, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.99]])


def test_kl_shaped_rewards_other_estimator_and_left_padding():
    # k3 with logp = ref: no penalty; left padding: score lands on the last position.
    logp = t([[0.3, -1.0, -2.0]])
    rewards = kl_shaped_rewards(t([5.0]), logp, logp.clone(), t([[0, 1, 1]]), beta=1.0, kind="k3")
    close(rewards, [[0.0, 0.0, 5.0]])


# --- GRPO / RLOO -----------------------------------------------------------------------
def test_grpo_by_hand():
    # Group 1 [1, 0, 0, 1]: mean 0.5, centered [0.5, -0.5, -0.5, 0.5],
    #   sample std = sqrt(4 * 0.25 / 3) = sqrt(1/3) = 0.5773503; A = +-0.5 / (sqrt(1/3) + 1e-4)
    # Group 2 [1, 1, 1, 1]: zero variance -> all 0
    a = 0.5 / (math.sqrt(1 / 3) + 1e-4)
    adv = grpo_advantages(t([[1, 0, 0, 1], [1, 1, 1, 1]]), eps=1e-4)
    close(adv, [[a, -a, -a, a], [0, 0, 0, 0]])


def test_grpo_unscaled_and_float_constant_group():
    close(grpo_advantages(t([[1, 0, 0, 1]]), scale=False), [[0.5, -0.5, -0.5, 0.5]])
    # 0.1 * 3 / 3 is not exactly 0.1 in floating point: still exactly 0
    assert torch.all(grpo_advantages(t([[0.1, 0.1, 0.1]])) == 0)
    assert torch.all(grpo_advantages(torch.tensor([[0.1, 0.1, 0.1]], dtype=torch.float32)) == 0)


def test_grpo_nan_is_skipped():
    # [1, nan, 0, 2]: valid [1, 0, 2], mean 1, centered [0, -1, 1], sample std sqrt(2/2) = 1
    # -> [0, 0, -1/(1+eps), 1/(1+eps)]
    e = 1e-4
    adv = grpo_advantages(t([[1, NAN, 0, 2], [NAN, NAN, 3, NAN], [NAN, NAN, NAN, NAN]]), eps=e)
    close(adv, [[0, 0, -1 / (1 + e), 1 / (1 + e)], [0, 0, 0, 0], [0, 0, 0, 0]])
    assert not torch.isnan(adv).any()


def test_rloo_by_hand():
    # [1, 2, 3]: 1 - (2+3)/2 = -1.5, 2 - (1+3)/2 = 0, 3 - (1+2)/2 = 1.5
    close(rloo_advantages(t([[1, 2, 3]])), [[-1.5, 0.0, 1.5]])
    # equals G/(G-1) * (r - mean) = 1.5 * [-1, 0, 1]
    # NaN skipped: [1, nan, 3, 5] -> n = 3: 1 - (3+5)/2 = -3, 3 - (1+5)/2 = 0, 5 - (1+3)/2 = 3
    close(rloo_advantages(t([[1, NAN, 3, 5]])), [[-3.0, 0.0, 0.0, 3.0]])
    # fewer than two valid rewards: no baseline -> 0
    close(rloo_advantages(t([[NAN, 4.0], [7.0, NAN]])), [[0.0, 0.0], [0.0, 0.0]])


def test_group_advantage_shapes():
    r = torch.rand(5, 8)
    assert grpo_advantages(r).shape == (5, 8)
    assert rloo_advantages(r).shape == (5, 8)
    torch.testing.assert_close(rloo_advantages(r), 8 / 7 * (r - r.mean(dim=1, keepdim=True)))
