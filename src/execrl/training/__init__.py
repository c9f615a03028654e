"""Training building blocks: RL math on tensors and preference-pair mining.

Modules (import them directly; torch is imported only by :mod:`execrl.training.rl_math`,
so ``import execrl.training`` works without torch):

- :mod:`execrl.training.rl_math`: pure tensor functions (GAE, whitening, PPO losses, KL
  penalties and KL-shaped rewards, GRPO and RLOO advantages), each with shapes and the
  paper's equation in its docstring.
- :mod:`execrl.training.pairs`: DPO preference pairs mined from execution verdicts
  (pure Python).
- :mod:`execrl.training.tiny`: the tiny local Llama and tokenizer for CPU demos and tests.
- :mod:`execrl.training.config`: recipe configs (one dataclass each, YAML presets and
  ``key=value`` overrides, one-line errors before any work) and run directories.
"""

__all__ = ["config", "pairs", "rl_math", "tiny"]
