"""Pluggable describers of the difference between two performances, with a per-pair cache.

The ADR paper (section 2, Figure 2) builds each pair's ground-truth *action difference
description* by prompting an LLM (Gemini 2.5) with an instruction and the expert commentary of
the two videos; the instruction stresses which player does which part better. This module makes
that step pluggable:

* :class:`HFChatDescriber` -- a local (or already-cached) Hugging Face causal LM, driven through
  the tokenizer's chat template (a plain prompt when the tokenizer has none); loaded lazily.
* :class:`OpenAIDescriber` -- any OpenAI-compatible ``/chat/completions`` endpoint, via urllib
  (no extra dependency). Nothing is sent anywhere unless the caller gives the URL: there is no
  default endpoint. The API key is read from an environment variable.
* :class:`JSONLDescriber` -- descriptions made elsewhere, one JSON object per line
  ``{"id_a", "id_b", "description"}`` (either order of the pair matches).
* :class:`CachedDescriber` -- wraps any of them with a cache folder holding one JSON file per
  pair, written atomically as each answer arrives, so an interrupted or failed run (quota error,
  crash, Ctrl-C) loses nothing already answered and a rerun asks only the missing pairs.

:func:`make_describer` builds one from a spec string: ``None``, ``"hf:PATH_OR_ID"``,
``"openai:URL#MODEL"`` or ``"jsonl:PATH"``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from kept.io import atomic_write_json

__all__ = [
    "INSTRUCTION", "Describer", "HFChatDescriber", "OpenAIDescriber", "JSONLDescriber",
    "CachedDescriber", "make_describer", "build_prompt",
]

INSTRUCTION = (
    "You are a sports coach. Below are expert commentaries on two players performing the same "
    "action: Player 1 and Player 2. Summarise, in one paragraph, how their performances differ. "
    "Focus on the differences in technique and execution, and state explicitly which player does "
    "which part better (for example: 'Player 1 keeps a more stable base, while Player 2 has the "
    "better follow-through'). Do not describe the two players separately and do not invent "
    "details that the commentaries do not support."
)


def build_prompt(commentary_1: str, commentary_2: str, instruction: str = INSTRUCTION) -> str:
    """The user message: the instruction followed by both players' commentary."""
    return (f"{instruction}\n\nPlayer 1 expert commentary:\n{(commentary_1 or '').strip()}\n\n"
            f"Player 2 expert commentary:\n{(commentary_2 or '').strip()}")


@runtime_checkable
class Describer(Protocol):
    """Anything that turns two commentaries into one difference description."""

    def describe(self, commentary_1: str, commentary_2: str) -> str: ...


def _model_name(describer: Any) -> str:
    for attr in ("name", "model"):
        value = getattr(describer, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(describer).__name__


# -- Hugging Face ----------------------------------------------------------------------------
class HFChatDescriber:
    """A causal LM from transformers, prompted through the tokenizer's chat template.

    Args:
        model: a local folder or a hub id (whatever ``from_pretrained`` accepts; with no network
            only local folders and already-cached ids work).
        device: torch device for generation.
        max_new_tokens: the most tokens generated per description.
        temperature: 0 decodes greedily; > 0 samples at that temperature.
        tokenizer: a different tokenizer path (default: ``model``).
        instruction: the prompt instruction (default :data:`INSTRUCTION`).
    """

    def __init__(self, model: str, device: str = "cpu", max_new_tokens: int = 200,
                 temperature: float = 0.0, *, tokenizer: str | None = None,
                 instruction: str = INSTRUCTION) -> None:
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        self.model = str(model)
        self.name = f"hf:{self.model}"
        self.device = device
        self.max_new_tokens = int(max_new_tokens)
        self.temperature = float(temperature)
        self.tokenizer_path = str(tokenizer or model)
        self.instruction = instruction
        self._tok = None
        self._lm = None
        self.last_num_new_tokens: int | None = None

    def _load(self) -> None:
        if self._lm is not None:
            return
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._tok = AutoTokenizer.from_pretrained(self.tokenizer_path)
        self._lm = AutoModelForCausalLM.from_pretrained(self.model).to(self.device).eval()

    def prompt_text(self, commentary_1: str, commentary_2: str) -> str:
        """The exact text fed to the model (chat template applied when there is one)."""
        self._load()
        user = build_prompt(commentary_1, commentary_2, self.instruction)
        if getattr(self._tok, "chat_template", None):
            return self._tok.apply_chat_template(
                [{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True)
        return f"{user}\n\nSummary of the differences:\n"

    def describe(self, commentary_1: str, commentary_2: str) -> str:
        import torch

        text = self.prompt_text(commentary_1, commentary_2)
        enc = self._tok(text, return_tensors="pt", add_special_tokens=False)
        enc = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        pad = self._tok.pad_token_id
        if pad is None:
            pad = self._tok.eos_token_id if self._tok.eos_token_id is not None else 0
        kwargs: dict[str, Any] = dict(max_new_tokens=self.max_new_tokens, pad_token_id=pad)
        if self.temperature > 0:
            kwargs.update(do_sample=True, temperature=self.temperature)
        else:
            kwargs.update(do_sample=False)
        with torch.no_grad():
            out = self._lm.generate(**enc, **kwargs)
        new = out[0, enc["input_ids"].shape[1]:]
        self.last_num_new_tokens = int(new.shape[0])
        return self._tok.decode(new, skip_special_tokens=True).strip()


# -- OpenAI-compatible HTTP ------------------------------------------------------------------
class DescriberError(RuntimeError):
    """A describer failed for one pair (bad HTTP status, unparsable reply, ...)."""


class OpenAIDescriber:
    """An OpenAI-compatible chat-completions endpoint, called with urllib.

    Args:
        url: the API base, e.g. ``http://127.0.0.1:8000/v1`` (``/chat/completions`` is appended).
            Required: there is no default endpoint.
        model: the model name sent in the request body.
        api_key_env: environment variable holding the key (sent as ``Authorization: Bearer``);
            None sends no key (for local servers that need none).
        timeout: seconds per request.
        max_retries: retries after a 429, a 5xx or a connection error, with exponential backoff
            (``backoff * 2**attempt`` seconds); any other error is raised at once.
        max_tokens, temperature: sent in the request body.
    """

    def __init__(self, url: str, model: str, api_key_env: str | None = "OPENAI_API_KEY",
                 timeout: float = 60, max_retries: int = 3, *, backoff: float = 1.0,
                 max_tokens: int = 400, temperature: float = 0.0,
                 instruction: str = INSTRUCTION) -> None:
        if not url or not str(url).startswith(("http://", "https://")):
            raise ValueError(f"OpenAIDescriber needs an http(s) URL of the API base, got {url!r}")
        if not model:
            raise ValueError("OpenAIDescriber needs a model name")
        self.url = str(url).rstrip("/")
        self.model = model
        self.name = f"openai:{self.url}#{model}"
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_tokens = int(max_tokens)
        self.temperature = float(temperature)
        self.instruction = instruction

    def _key(self) -> str | None:
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ValueError(
                f"OpenAIDescriber: environment variable {self.api_key_env} is not set; export the "
                f"API key for {self.url} in it (or pass api_key_env=None for a server without keys)"
            )
        return key

    def describe(self, commentary_1: str, commentary_2: str) -> str:
        key = self._key()
        body = json.dumps({
            "model": self.model,
            "messages": [{"role": "user",
                          "content": build_prompt(commentary_1, commentary_2, self.instruction)}],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        endpoint = f"{self.url}/chat/completions"
        last = ""
        for attempt in range(self.max_retries + 1):
            req = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    payload = json.loads(resp.read().decode("utf-8"))
                try:
                    return str(payload["choices"][0]["message"]["content"]).strip()
                except (KeyError, IndexError, TypeError):
                    raise DescriberError(
                        f"{endpoint}: reply has no choices[0].message.content: "
                        f"{json.dumps(payload)[:300]}") from None
            except urllib.error.HTTPError as e:
                detail = e.read().decode("utf-8", "replace")[:300]
                last = f"HTTP {e.code}: {detail}"
                if e.code != 429 and e.code < 500:
                    raise DescriberError(f"{endpoint}: {last}") from None
            except urllib.error.URLError as e:
                last = f"connection failed: {e.reason}"
            except json.JSONDecodeError as e:
                raise DescriberError(f"{endpoint}: reply is not JSON ({e})") from None
            if attempt < self.max_retries:
                time.sleep(self.backoff * 2 ** attempt)
        raise DescriberError(f"{endpoint}: gave up after {self.max_retries + 1} attempts; last: {last}")


# -- JSONL -----------------------------------------------------------------------------------
class JSONLDescriber:
    """Descriptions read from a JSON-lines file of ``{"id_a", "id_b", "description"}`` objects."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = f"jsonl:{self.path}"
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path} not found; give a JSON-lines file of "
                                    '{"id_a", "id_b", "description"} objects')
        self.table: dict[tuple[str, str], str] = {}
        with open(self.path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    a, b, d = str(row["id_a"]), str(row["id_b"]), str(row["description"])
                except (json.JSONDecodeError, KeyError, TypeError) as e:
                    raise ValueError(f"{self.path} line {n}: need a JSON object with id_a, id_b "
                                     f"and description ({e})") from None
                self.table[(a, b)] = d

    def describe_pair(self, id_a: str, id_b: str, commentary_1: str | None = None,
                      commentary_2: str | None = None) -> str:
        for key in ((id_a, id_b), (id_b, id_a)):
            if key in self.table:
                return self.table[key]
        raise KeyError(f"{self.path}: no description for pair ({id_a}, {id_b})")

    def describe(self, commentary_1: str, commentary_2: str) -> str:
        raise TypeError("JSONLDescriber looks descriptions up by recording ids; call "
                        "describe_pair(id_a, id_b, c1, c2)")


# -- cache -----------------------------------------------------------------------------------
class CachedDescriber:
    """Wrap a describer with a folder cache of one JSON file per pair.

    The key of a pair is ``sha1("id_a|id_b|model name|instruction")``; each answer is written
    atomically (``<cache_dir>/<key>.json``) as soon as it arrives, so a rerun only asks for the
    pairs not yet on disk.

    Args:
        describer: the describer to ask (``describe_pair`` is used when it has one, else
            ``describe``).
        cache_dir: the cache folder (created).
        model_name: the name in the key (default: the describer's ``name``/``model``).
        instruction: the instruction in the key (default: the describer's, else
            :data:`INSTRUCTION`).
        max_errors: stop asking after this many failed pairs (None: never stop early).
    """

    def __init__(self, describer: Any, cache_dir: str | Path, *, model_name: str | None = None,
                 instruction: str | None = None, max_errors: int | None = None) -> None:
        self.inner = describer
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.model_name = model_name or _model_name(describer)
        self.name = self.model_name
        self.instruction = instruction or getattr(describer, "instruction", None) or INSTRUCTION
        self.max_errors = max_errors
        self.errors: dict[tuple[str, str], str] = {}
        self.asked = 0

    def key(self, id_a: str, id_b: str) -> str:
        raw = f"{id_a}|{id_b}|{self.model_name}|{self.instruction}"
        return hashlib.sha1(raw.encode("utf-8")).hexdigest()

    def path(self, id_a: str, id_b: str) -> Path:
        return self.cache_dir / f"{self.key(id_a, id_b)}.json"

    def cached(self, id_a: str, id_b: str) -> str | None:
        p = self.path(id_a, id_b)
        if not p.is_file():
            return None
        try:
            return str(json.loads(p.read_text(encoding="utf-8"))["description"])
        except (json.JSONDecodeError, KeyError, TypeError, OSError):
            return None  # a damaged entry is asked again

    def _ask(self, id_a: str, id_b: str, c1: str, c2: str) -> str:
        if hasattr(self.inner, "describe_pair"):
            return self.inner.describe_pair(id_a, id_b, c1, c2)
        return self.inner.describe(c1, c2)

    def describe_pair(self, id_a: str, id_b: str, c1: str, c2: str) -> str:
        hit = self.cached(id_a, id_b)
        if hit is not None:
            return hit
        self.asked += 1
        text = self._ask(id_a, id_b, c1, c2)
        atomic_write_json(self.path(id_a, id_b), {
            "id_a": id_a, "id_b": id_b, "model": self.model_name, "description": text})
        return text

    def describe(self, commentary_1: str, commentary_2: str) -> str:
        h = [hashlib.sha1((c or "").encode("utf-8")).hexdigest()[:16]
             for c in (commentary_1, commentary_2)]
        return self.describe_pair(f"text:{h[0]}", f"text:{h[1]}", commentary_1, commentary_2)

    def describe_pairs(self, pairs: list[tuple[str, str, str, str]], progress: bool = True
                       ) -> dict[tuple[str, str], str]:
        """Describe every pair, resuming from the cache; failures are collected, not raised.

        Returns the descriptions of the pairs that succeeded (cached or new). The failures of
        this call are in :attr:`errors` (pair -> message) and summarised on stderr at the end;
        with ``max_errors`` set, the run stops once that many pairs failed.
        """
        self.errors = {}
        out: dict[tuple[str, str], str] = {}
        n = len(pairs)
        cached = 0
        for i, (a, b, c1, c2) in enumerate(pairs, 1):
            hit = self.cached(a, b)
            if hit is not None:
                out[(a, b)] = hit
                cached += 1
                continue
            try:
                out[(a, b)] = self.describe_pair(a, b, c1, c2)
            except KeyboardInterrupt:
                raise
            except Exception as e:  # noqa: BLE001 -- collected and reported below
                self.errors[(a, b)] = f"{type(e).__name__}: {e}"
                if self.max_errors is not None and len(self.errors) >= self.max_errors:
                    print(f"describe: stopping after {len(self.errors)} errors (max_errors="
                          f"{self.max_errors}); {i}/{n} pairs seen", file=sys.stderr)
                    break
            if progress and (i % 25 == 0 or i == n):
                print(f"describe: {i}/{n} pairs ({cached} cached, {len(self.errors)} errors)",
                      file=sys.stderr)
        if self.errors:
            first = next(iter(self.errors.items()))
            print(f"describe: {len(self.errors)} of {n} pairs failed (kept in cache: "
                  f"{len(out)}); first: {first[0]}: {first[1]}", file=sys.stderr)
        return out


# -- factory ---------------------------------------------------------------------------------
def make_describer(spec: str | None, *, cache_dir: str | Path | None = None,
                   max_errors: int | None = None, **kwargs: Any) -> Any:
    """Build a describer from a spec string.

    Args:
        spec: None (no descriptions), ``"hf:PATH_OR_ID"``, ``"openai:URL#MODEL"`` or
            ``"jsonl:PATH"``.
        cache_dir: wrap the describer in a :class:`CachedDescriber` with this folder (ignored
            for ``jsonl:``, which is already a stored answer).
        max_errors: passed to :class:`CachedDescriber`.
        **kwargs: passed to the describer's constructor (e.g. ``device``, ``api_key_env``).

    Returns:
        The describer, or None when ``spec`` is None or empty.
    """
    if spec is None or not str(spec).strip():
        return None
    kind, sep, rest = str(spec).partition(":")
    if not sep or not rest:
        raise ValueError(f"describer spec {spec!r}: use hf:PATH_OR_ID, openai:URL#MODEL or "
                         "jsonl:PATH")
    kind = kind.strip().lower()
    if kind == "jsonl":
        return JSONLDescriber(rest, **kwargs)
    if kind == "hf":
        d: Any = HFChatDescriber(rest, **kwargs)
    elif kind == "openai":
        url, hash_, model = rest.rpartition("#")
        if not hash_ or not url or not model:
            raise ValueError(f"describer spec {spec!r}: write openai:URL#MODEL, e.g. "
                             "openai:http://127.0.0.1:8000/v1#my-model")
        d = OpenAIDescriber(url, model, **kwargs)
    else:
        raise ValueError(f"describer spec {spec!r}: unknown kind {kind!r}; use hf, openai or jsonl")
    if cache_dir is not None:
        return CachedDescriber(d, cache_dir, max_errors=max_errors)
    return d
