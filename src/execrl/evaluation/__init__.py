"""Evaluation: samples in, verdicts and pass@k out."""

from execrl.evaluation.evaluate import Summary, evaluate, summarize
from execrl.evaluation.passk import pass_at_k, pass_at_k_table
from execrl.evaluation.samples import Sample, read_samples, reference_samples

__all__ = ["Sample", "Summary", "evaluate", "pass_at_k", "pass_at_k_table", "read_samples", "reference_samples", "summarize"]
