"""Generation through an OpenAI-compatible HTTP server: vLLM, TGI, llama.cpp, Ollama, OpenAI.

Quirks handled, so one set of :class:`SamplingParams` means the same on every server:

- ``n`` is ignored by some servers (llama.cpp, Ollama, TGI answer with one choice): missing
  completions are requested again (``n`` = what is still missing), each request with its own
  seed (``seed + i``) so that seeded repeats are not copies of each other.
- greedy (temperature 0) sends ``n=1`` and no ``top_p``, and repeats the answer: vLLM rejects
  ``n > 1`` and ``top_p < 1`` with greedy sampling, and the answers would be identical anyway.
- ``top_p`` is sent only when below 1: TGI rejects ``top_p == 1.0``.
- at most 4 ``stop`` strings are sent (OpenAI's limit); every stop string is applied to the
  returned text anyway, and the completion always excludes the stop string.
- a chat answer whose ``content`` is null (tool calls, some reasoning models) counts as "".
- a base URL without a path gets ``/v1`` (``http://localhost:11434`` works for Ollama); a URL
  with a path is used as given (``https://openrouter.ai/api/v1``).
- ``model=None`` asks ``GET /models`` and uses the first model served (llama.cpp serves one).

Retries: 408, 429, 5xx and connection errors/timeouts are retried up to ``max_retries`` times
with exponential backoff and jitter, waiting what ``Retry-After`` says when the server sends
it; other statuses fail at once. Failures raise :class:`BackendError` with a one-line message.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import json
import os
import random
import time
from typing import Any
from urllib.parse import urlsplit

from execrl.generation._types import BackendError, Prompt, SamplingParams, as_messages, truncate_at_stop

INSTALL_HINT = "OpenAICompatGenerator needs httpx: pip install httpx"
MAX_STOP_SENT = 4  # OpenAI rejects more; vLLM and others accept them, but the text is cut here anyway
RETRY_AFTER_CAP = 600.0  # seconds; a Retry-After beyond this is treated as this


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return httpx


class OpenAICompatGenerator:
    """Completions from ``/v1/completions`` (plain prompts) or ``/v1/chat/completions`` (chat
    messages, or every prompt when ``chat=True``) of an OpenAI-compatible server.

    Requests run concurrently, at most ``concurrency`` at a time (retries included).
    ``api_key`` defaults to ``$OPENAI_API_KEY`` (sent as a bearer token when set). ``timeout``
    is seconds per request; ``backoff`` is the first retry delay, doubled each retry up to
    ``max_backoff``. ``extra_body`` is merged into every request (server-specific options such
    as vLLM's ``top_k`` or ``repetition_penalty``).
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        *,
        chat: bool | None = None,
        concurrency: int = 8,
        max_retries: int = 5,
        timeout: float = 600.0,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        _httpx()
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL such as http://localhost:8000/v1, got {base_url!r}")
        if concurrency < 1 or max_retries < 0:
            raise ValueError("concurrency must be >= 1 and max_retries >= 0")
        self.base_url = base_url.rstrip("/") + ("/v1" if parts.path in ("", "/") else "")
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.chat = chat
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.timeout = timeout
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.extra_body = dict(extra_body or {})

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[str]]:
        """``params.n`` completions per prompt, in prompt order (blocking wrapper of :meth:`agenerate`)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.agenerate(prompts, params))
        # Called from inside a running event loop (a notebook): asyncio.run needs a thread of its own.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, self.agenerate(prompts, params)).result()

    async def agenerate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[str]]:
        """The same as :meth:`generate`, for callers that already run an event loop."""
        for p in prompts:
            if self.chat is False and not isinstance(p, str):
                raise ValueError("a chat prompt (list of messages) needs chat=None or chat=True")
        httpx = _httpx()
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        limits = httpx.Limits(max_connections=self.concurrency)
        async with httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=self.timeout, limits=limits) as client:
            slots = asyncio.Semaphore(self.concurrency)
            model = self.model or await self._served_model(client, slots)
            done = await asyncio.gather(*(self._complete(client, slots, model, p, params) for p in prompts))
        return list(done)

    async def _complete(self, client: Any, slots: asyncio.Semaphore, model: str, prompt: Prompt,
                        params: SamplingParams) -> list[str]:
        chat = bool(self.chat) or not isinstance(prompt, str)
        path = "/chat/completions" if chat else "/completions"
        want = 1 if params.greedy else params.n
        texts: list[str] = []
        for request in range(want):  # one request is enough when the server honours n
            body = self._body(model, prompt, chat, params, n=want - len(texts), request=request)
            answer = await self._request(client, slots, "POST", path, body)
            choices = answer.get("choices") if isinstance(answer, dict) else None
            if not choices or not isinstance(choices, list):
                raise BackendError(f"POST {self.base_url}{path}: the answer has no choices")
            choices = sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)
            texts += [_choice_text(c, chat) for c in choices][: want - len(texts)]
            if len(texts) == want:
                break
        texts = [truncate_at_stop(t, params.stop) for t in texts]
        return texts * params.n if params.greedy else texts

    def _body(self, model: str, prompt: Prompt, chat: bool, params: SamplingParams, n: int,
              request: int) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model, "max_tokens": params.max_new_tokens, "temperature": params.temperature}
        body["messages" if chat else "prompt"] = as_messages(prompt) if chat else prompt
        if n > 1:
            body["n"] = n
        if params.top_p < 1 and not params.greedy:
            body["top_p"] = params.top_p
        if params.stop:
            body["stop"] = params.stop[:MAX_STOP_SENT]
        if params.seed is not None:
            body["seed"] = params.seed + request
        body.update(self.extra_body)
        return body

    async def _served_model(self, client: Any, slots: asyncio.Semaphore) -> str:
        answer = await self._request(client, slots, "GET", "/models", None)
        try:
            return str(answer["data"][0]["id"])
        except (KeyError, IndexError, TypeError):
            raise BackendError(f"GET {self.base_url}/models: no model listed; pass the model name") from None

    async def _request(self, client: Any, slots: asyncio.Semaphore, method: str, path: str,
                       body: dict[str, Any] | None) -> Any:
        httpx = _httpx()
        where = f"{method} {self.base_url}{path}"
        for attempt in range(self.max_retries + 1):
            wait = None
            async with slots:
                try:
                    response = await client.request(method, path, json=body)
                except httpx.TransportError as exc:  # refused, reset, timed out
                    problem = f"{type(exc).__name__}: {exc}".rstrip(": ")
                else:
                    status = response.status_code
                    if 200 <= status < 300:
                        try:
                            return response.json()
                        except ValueError:
                            raise BackendError(f"{where}: the answer is not JSON: {_snippet(response.text)}") from None
                    problem = f"HTTP {status}: {_error_message(response.text)}"
                    if status not in (408, 429) and status < 500:
                        raise BackendError(f"{where}: {problem}")
                    wait = _retry_after(response.headers.get("retry-after"))
            if attempt < self.max_retries:
                # Sleep outside the semaphore: a waiting retry must not hold a request slot.
                await asyncio.sleep(wait if wait is not None else self._backoff(attempt))
        raise BackendError(f"{where} failed after {self.max_retries + 1} attempts: {problem}")

    def _backoff(self, attempt: int) -> float:
        return min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.5, 1.0)


def _choice_text(choice: Any, chat: bool) -> str:
    if not isinstance(choice, dict):
        return ""
    if chat:
        message = choice.get("message")
        text = message.get("content") if isinstance(message, dict) else None
    else:
        text = choice.get("text")
    return text if isinstance(text, str) else ""


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


def _error_message(text: str) -> str:
    """The server's own message when it sends JSON (OpenAI: error.message; vLLM: message; TGI: error)."""
    try:
        obj = json.loads(text)
    except ValueError:
        return _snippet(text)
    if isinstance(obj, dict):
        err = obj.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return _snippet(err["message"])
        for value in (err, obj.get("message"), obj.get("detail")):
            if isinstance(value, str):
                return _snippet(value)
    return _snippet(text)


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
