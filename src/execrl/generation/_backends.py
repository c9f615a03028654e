"""Backends by name: ``make_backend("hf:PATH_OR_ID")`` and friends, through one dict."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from execrl.generation._types import Generator


def _hf(target: str, **kw: Any) -> Generator:
    from execrl.generation.hf import HFGenerator

    return HFGenerator(target, **kw)


def _openai(target: str, **kw: Any) -> Generator:
    from execrl.generation.openai_compat import OpenAICompatGenerator

    base_url, _, model = target.partition("#")
    if model:
        kw["model"] = model
    return OpenAICompatGenerator(base_url, **kw)


def _vllm(target: str, **kw: Any) -> Generator:
    from execrl.generation.vllm_backend import VLLMGenerator

    return VLLMGenerator(target, **kw)


BACKENDS: dict[str, Callable[..., Generator]] = {
    "hf": _hf,  # hf:PATH_OR_HUB_ID
    "openai": _openai,  # openai:http://host:port/v1#model-name (no #model: the first one the server lists)
    "vllm": _vllm,  # vllm:PATH_OR_HUB_ID
}


def make_backend(spec: str, **kw: Any) -> Generator:
    """The generator a spec names: ``hf:PATH_OR_ID``, ``openai:http://host:port/v1#model-name``
    or ``vllm:PATH_OR_ID``. Keyword arguments go to the backend's constructor."""
    scheme, sep, target = spec.partition(":")
    factory = BACKENDS.get(scheme)
    if factory is None or not sep or not target:
        known = ", ".join(f"{k}:..." for k in BACKENDS)
        raise ValueError(f"unknown backend spec {spec!r}; expected one of {known}")
    return factory(target, **kw)
