"""Rewards for RL on code, with TRL's reward-function signature.

Execution rewards (:mod:`execrl.rewards.execution`) score a whole batch through the sandbox
pool; static rewards (:mod:`execrl.rewards.static`) need no execution; :func:`combine` mixes
them. Every function accepts ``(prompts, completions, completion_ids=None, **columns)`` and
returns ``list[float | None]`` (``None``: the harness failed, TRL skips the sample).
"""

from execrl.rewards.columns import TestSpec, decode_spec, decode_tests, encode_tests, task_rows
from execrl.rewards.combine import CombinedReward, combine
from execrl.rewards.execution import (
    CODERL_VALUES,
    AsyncExecutionReward,
    ExecutionReward,
    VerdictCache,
    coderl,
    pass_all,
    pass_fraction,
)
from execrl.rewards.static import (
    ComplexityReward,
    FormatReward,
    LengthReward,
    RuffReward,
    SecurityReward,
    SyntaxReward,
)

__all__ = [
    "CODERL_VALUES",
    "ComplexityReward",
    "FormatReward",
    "LengthReward",
    "RuffReward",
    "SecurityReward",
    "SyntaxReward",
    "TestSpec",
    "AsyncExecutionReward",
    "CombinedReward",
    "ExecutionReward",
    "VerdictCache",
    "coderl",
    "combine",
    "decode_spec",
    "decode_tests",
    "encode_tests",
    "pass_all",
    "pass_fraction",
    "task_rows",
]
