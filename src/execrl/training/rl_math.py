"""RL math as pure functions on torch tensors.

Shapes: ``B`` batch (sequences or prompts), ``T`` tokens, ``G`` completions per prompt.

Conventions shared by every function here:

- ``mask`` is ``[B, T]``, bool or 0/1 float; nonzero marks a valid (generated) token.
  Outputs at masked positions are exactly 0, and masked positions never contribute to a
  mean, a std or a loss.
- Losses are *token means*: ``sum(x * mask) / sum(mask)`` over the whole batch (every valid
  token weighs the same); an all-masked batch gives 0, not NaN.
- ``logprobs`` are log-probabilities of the sampled tokens, ``[B, T]``.
- Nothing here calls ``.detach()`` on its inputs: pass detached rewards, values and old
  log-probs where the algorithm treats them as constants (returned stats are detached).
"""

from __future__ import annotations

import torch

__all__ = [
    "KL_ESTIMATORS",
    "critic_weighted_pg_loss",
    "gae",
    "grpo_advantages",
    "kl_penalty",
    "kl_shaped_rewards",
    "masked_mean",
    "ppo_policy_loss",
    "ppo_value_loss",
    "rloo_advantages",
    "whiten",
]


def _valid(mask: torch.Tensor) -> torch.Tensor:
    return mask.to(torch.bool)


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of ``x`` over positions where ``mask`` is nonzero; 0 when none is.

    Shapes: ``x`` and ``mask`` the same (any); returns a scalar.
    Equation: ``sum(x * m) / max(sum(m), 1)``.
    """
    if mask is None:
        return x.mean()
    m = _valid(mask).to(x.dtype)
    return (x * m).sum() / m.sum().clamp(min=1.0)


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor | None = None,
    gamma: float = 1.0,
    lam: float = 0.95,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation (Schulman et al. 2016, arXiv:1506.02438).

    Shapes: ``rewards`` ``[B, T]``; ``values`` ``[B, T + 1]`` (the last column is the
    bootstrap value of the state after the last valid token, 0 for a finished episode) or
    ``[B, T]`` (bootstrap 0); ``mask`` ``[B, T]`` or None (all valid).
    Returns ``(advantages, returns)``, both ``[B, T]``, 0 at masked positions.

    Equations, computed right to left::

        delta_t = r_t + gamma * V_{t+1} - V_t
        A_t     = delta_t + gamma * lam * A_{t+1}
        R_t     = A_t + V_t        (the value-function target)

    Mask semantics: masked positions are *skipped*, not terminal: ``t + 1`` above means
    the next valid position of the same row, so the recursion runs across masked tokens
    in the middle (e.g. tool output) and, with right padding, the bootstrap value meets
    the last valid token. Discounting counts valid steps only.
    """
    B, T = rewards.shape
    if mask is None:
        mask = torch.ones_like(rewards, dtype=torch.bool)
    if values.shape == (B, T + 1):
        next_value = values[:, T]
        values = values[:, :T]
    elif values.shape == (B, T):
        next_value = torch.zeros_like(values[:, 0])
    else:
        raise ValueError(f"values must be [B, T+1] or [B, T] = [{B}, {T}], got {list(values.shape)}")
    if mask.shape != (B, T):
        raise ValueError(f"mask must be [B, T] = [{B}, {T}], got {list(mask.shape)}")
    valid = _valid(mask)
    next_adv = torch.zeros_like(next_value)
    advantages = torch.zeros_like(rewards)
    for t in reversed(range(T)):
        m = valid[:, t]
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        adv = delta + gamma * lam * next_adv
        advantages[:, t] = torch.where(m, adv, torch.zeros_like(adv))
        next_value = torch.where(m, values[:, t], next_value)
        next_adv = torch.where(m, adv, next_adv)
    returns = torch.where(valid, advantages + values, torch.zeros_like(advantages))
    return advantages, returns


def whiten(
    x: torch.Tensor,
    mask: torch.Tensor | None = None,
    shift_mean: bool = True,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Normalize ``x`` to zero mean and unit variance over its valid positions.

    Shapes: ``x`` and ``mask`` ``[B, T]`` (any shape, the same); returns ``x``'s shape,
    0 at masked positions.
    Equation: ``(x - mu) / sqrt(var + eps)`` with the masked mean ``mu`` and the masked
    *population* variance ``var = sum(m (x - mu)^2) / sum(m)``; with ``shift_mean=False``
    the mean is added back (scale only), as in TRL's ``masked_whiten``.
    """
    if mask is None:
        mask = torch.ones_like(x, dtype=torch.bool)
    valid = _valid(mask)
    mu = masked_mean(x, valid)
    var = masked_mean((x - mu) ** 2, valid)
    out = (x - mu) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mu
    return torch.where(valid, out, torch.zeros_like(out))


def ppo_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor | None = None,
    clip_eps: float = 0.2,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO clipped surrogate loss (Schulman et al. 2017, arXiv:1707.06347, eq. 7).

    Shapes: all inputs ``[B, T]``; returns a scalar loss and detached scalar stats.
    Equation, with ``rho_t = exp(logp_t - old_logp_t)``::

        L = token_mean( max(-A_t * rho_t, -A_t * clip(rho_t, 1 - eps, 1 + eps)) )

    (the negated ``min`` of the paper, so it is minimized). Stats:
    ``clipfrac`` = token mean of ``[clipped term > unclipped term]`` (the clip is active
    and the gradient through that token is zero); ``approx_kl`` = token mean of
    ``(rho - 1) - log rho``, the k3 estimator of KL(old || new) on samples from old.
    """
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    with torch.no_grad():
        clipfrac = masked_mean((clipped > unclipped).to(logprobs.dtype), mask)
        approx_kl = masked_mean(torch.expm1(log_ratio) - log_ratio, mask)
    return loss, {"clipfrac": clipfrac, "approx_kl": approx_kl}


def ppo_value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor | None = None,
    clip_eps: float = 0.2,
) -> torch.Tensor:
    """Clipped value loss (as in OpenAI baselines' PPO2 and TRL's PPO).

    Shapes: all inputs ``[B, T]``; returns a scalar.
    Equation::

        V_clip = V_old + clip(V - V_old, -eps, +eps)
        L      = 0.5 * token_mean( max((V - R)^2, (V_clip - R)^2) )
    """
    clipped = old_values + torch.clamp(values - old_values, -clip_eps, clip_eps)
    worst = torch.maximum((values - returns) ** 2, (clipped - returns) ** 2)
    return 0.5 * masked_mean(worst, mask)


def _k1(log_r: torch.Tensor) -> torch.Tensor:
    return -log_r


def _k2(log_r: torch.Tensor) -> torch.Tensor:
    return 0.5 * log_r**2


def _k3(log_r: torch.Tensor) -> torch.Tensor:
    return torch.expm1(log_r) - log_r


KL_ESTIMATORS = {"k1": _k1, "k2": _k2, "k3": _k3}
"""Per-sample estimators of KL(pi || pi_ref) as functions of ``log r = logp_ref - logp``."""


def kl_penalty(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, kind: str = "k1") -> torch.Tensor:
    """Per-token estimate of KL(pi || pi_ref) on tokens sampled from pi (Schulman 2020,
    "Approximating KL Divergence", http://joschu.net/blog/kl-approx.html).

    Shapes: ``logprobs`` (policy pi) and ``ref_logprobs`` (reference) ``[B, T]``;
    returns ``[B, T]`` (no masking: multiply by the mask yourself).
    With ``r = pi_ref(x) / pi(x)``, i.e. ``log r = ref_logprobs - logprobs``::

        k1 = -log r             = logprobs - ref_logprobs   (unbiased, can be negative)
        k2 = 0.5 * (log r)^2                                 (biased, >= 0)
        k3 = (r - 1) - log r                                 (unbiased, >= 0; GRPO's KL)
    """
    try:
        estimator = KL_ESTIMATORS[kind]
    except KeyError:
        raise ValueError(f"unknown KL estimator {kind!r}; expected one of {sorted(KL_ESTIMATORS)}") from None
    return estimator(ref_logprobs - logprobs)


def kl_shaped_rewards(
    scores: torch.Tensor,
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    mask: torch.Tensor | None = None,
    beta: float = 0.05,
    kind: str = "k1",
) -> torch.Tensor:
    """Per-token rewards: a KL penalty on every token plus the sequence score at the end
    (Ziegler et al. 2019, arXiv:1909.08593, eq. 2; TRL's former ``PPOTrainer``).

    Shapes: ``scores`` ``[B]``; ``logprobs``, ``ref_logprobs``, ``mask`` ``[B, T]``;
    returns ``[B, T]``, 0 at masked positions.
    Equation::

        r_t = -beta * KL_t(kind) + [t == last valid token] * score

    A row with no valid token gets no reward at all (its score is dropped).
    """
    if mask is None:
        mask = torch.ones_like(logprobs, dtype=torch.bool)
    valid = _valid(mask)
    kl = kl_penalty(logprobs, ref_logprobs, kind)
    rewards = torch.where(valid, -beta * kl, torch.zeros_like(kl))
    positions = torch.arange(valid.shape[1], device=valid.device).expand_as(valid)
    last = torch.where(valid, positions, torch.full_like(positions, -1)).amax(dim=1)
    has_token = last >= 0
    bonus = torch.where(has_token, scores.to(rewards.dtype), torch.zeros_like(rewards[:, 0]))
    return rewards.scatter_add(1, last.clamp(min=0).unsqueeze(1), bonus.unsqueeze(1))


def _group_stats(rewards: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Valid mask, count and mean per group (``[B, G]``, ``[B, 1]``, ``[B, 1]``), NaN excluded."""
    valid = ~torch.isnan(rewards)
    filled = torch.where(valid, rewards, torch.zeros_like(rewards))
    n = valid.sum(dim=1, keepdim=True).to(rewards.dtype)
    return valid, n, filled.sum(dim=1, keepdim=True)


def grpo_advantages(rewards: torch.Tensor, scale: bool = True, eps: float = 1e-4) -> torch.Tensor:
    """Group-relative advantages (Shao et al. 2024, DeepSeekMath, arXiv:2402.03300, sec. 4.1.2).

    Shapes: ``rewards`` ``[B, G]`` (B prompts, G completions each); returns ``[B, G]``.
    Equation, per group over its valid (non-NaN) rewards::

        A_i = (r_i - mean(r)) / (std(r) + eps)     (scale=True)
        A_i =  r_i - mean(r)                       (scale=False, Dr. GRPO / Liu et al. 2025)

    ``std`` is the sample std (Bessel-corrected, as ``torch.std`` and TRL's GRPOTrainer).
    A NaN reward marks a skipped sample: its advantage is 0 and it is left out of the
    group's mean and std. A group whose valid rewards are all equal (or with fewer than
    two valid rewards) gets advantage exactly 0, not rounding noise.
    """
    valid, n, total = _group_stats(rewards)
    mean = total / n.clamp(min=1.0)
    centered = torch.where(valid, rewards - mean, torch.zeros_like(rewards))
    inf = torch.full_like(rewards, float("inf"))
    constant = torch.where(valid, rewards, inf).amin(dim=1, keepdim=True) == torch.where(valid, rewards, -inf).amax(
        dim=1, keepdim=True
    )
    if scale:
        std = ((centered**2).sum(dim=1, keepdim=True) / (n - 1.0).clamp(min=1.0)).sqrt()
        centered = centered / (std + eps)
    return torch.where(valid & ~constant, centered, torch.zeros_like(centered))


def rloo_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """REINFORCE leave-one-out advantages (Ahmadian et al. 2024, arXiv:2402.14740, eq. 5;
    Kool et al. 2019).

    Shapes: ``rewards`` ``[B, G]``; returns ``[B, G]``.
    Equation, per group of the ``n`` valid (non-NaN) rewards::

        A_i = r_i - (1 / (n - 1)) * sum_{j != i} r_j  =  n / (n - 1) * (r_i - mean(r))

    NaN rewards (skipped samples) get 0 and are left out of the baseline; a group with
    fewer than two valid rewards has no baseline and gets 0.
    """
    valid, n, total = _group_stats(rewards)
    baseline = (total - torch.where(valid, rewards, torch.zeros_like(rewards))) / (n - 1.0).clamp(min=1.0)
    return torch.where(valid & (n >= 2), rewards - baseline, torch.zeros_like(rewards))


def critic_weighted_pg_loss(
    logprobs: torch.Tensor,
    weights: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """CodeRL's critic-weighted policy gradient with a baseline (Le et al. 2022,
    arXiv:2207.01780, sec. 3.2: the actor update).

    Shapes: ``logprobs``, ``weights`` and ``mask`` ``[B, T]``; ``advantages`` ``[B]``;
    returns a scalar.
    Equation, for a sample ``W^s = (w_1 .. w_T)`` of problem ``D`` and a baseline ``W^b``::

        L(W^s) = -(r(W^s) - r(W^b)) * sum_t q_phi(w_t) * log p_theta(w_t | w_<t, D)

    ``advantages`` is ``r(W^s) - r(W^b)`` (CodeRL's baseline is the greedy sample of the
    same problem); ``weights`` is ``q_phi(w_t)``, the critic's probability at token ``t`` of
    the outcome class the sample actually got (1 everywhere gives plain REINFORCE with a
    baseline). Both are constants: pass them detached. The batch loss is the sum of
    ``L(W^s)`` over the batch divided by its number of valid tokens (this module's
    token-mean convention: a constant factor per batch on the paper's per-sample sums).
    """
    if advantages.dim() != 1 or advantages.shape[0] != logprobs.shape[0]:
        raise ValueError(f"advantages must be [B] = [{logprobs.shape[0]}], got {list(advantages.shape)}")
    if weights.shape != logprobs.shape:
        raise ValueError(f"weights must be [B, T] = {list(logprobs.shape)}, got {list(weights.shape)}")
    per_token = -advantages.unsqueeze(1).to(logprobs.dtype) * weights * logprobs
    if mask is not None:  # padding may hold -inf log-probs: 0 * -inf would be NaN
        per_token = torch.where(_valid(mask), per_token, torch.zeros_like(per_token))
    return masked_mean(per_token, mask)
