"""Captioning metrics for difference descriptions.

Every system is scored with the same standard implementations and the same
tokenisation:

* **Tokenisation** -- :func:`tokenize` runs the Stanford CoreNLP 3.4.1
  ``PTBTokenizer`` jar that ships inside ``pycocoevalcap`` (Java, fully
  offline), with the exact options and punctuation filter of
  ``pycocoevalcap.tokenizer.ptbtokenizer.PTBTokenizer``: ``-preserveLines
  -lowerCase``, then the tokens in ``PTBTokenizer``'s ``PUNCTUATIONS`` list are
  dropped.  References and hypotheses go through the same call.  Like the
  reference COCO pipeline, the bracket tokens come out lower-cased
  (``-lrb-``/``-rrb-``), do not match the upper-case entries of that list and
  are therefore *kept*; this quirk is reproduced on purpose so that numbers are
  comparable with published COCO-style scores.  We call the jar ourselves
  rather than through ``PTBTokenizer.tokenize`` only to (a) write the temporary
  file to a private temporary directory instead of the installed package,
  (b) handle empty strings (which the wrapper can misalign) and (c) check that
  the tokenizer returned one line per input.
* **BLEU-1..4, METEOR, ROUGE-L, CIDEr** -- ``pycocoevalcap`` (``Bleu(4)`` with
  its default ``closest`` reference length, ``Meteor`` = meteor-1.5.jar with
  ``-l en -norm``, ``Rouge`` with beta = 1.2, ``Cider`` with n = 4,
  sigma = 6).  All values are corpus-level exactly as ``pycocoevalcap``
  returns them: BLEU from corpus n-gram counts, METEOR from the jar's
  aggregated statistics, ROUGE-L the mean over pairs, CIDEr the mean over pairs
  with IDF computed from the references of the scored corpus.  Consequently a
  corpus of a single pair has CIDEr = 0 (every n-gram has IDF log(1/1) = 0).
  SPICE is not used.
* **ROUGE-1 / ROUGE-2** -- ``rouge_score.rouge_scorer.RougeScorer`` F-measure,
  no stemming, on the same PTB tokens (a whitespace tokenizer is passed to the
  scorer so that it does not re-tokenise), with several references the
  reference with the best F-measure is used (``score_multi``), averaged over
  pairs.

Java is required (``java`` on ``PATH``).  METEOR's Java process takes several
seconds to start (it loads a paraphrase table): create one
:class:`MeteorScorer` and pass it as ``meteor=`` to evaluate many corpora;
without it a scorer is started and closed inside each call.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "TEXT_METRICS",
    "MeteorScorer",
    "evaluate_text",
    "text_metrics",
    "tokenize",
    "tokenize_many",
]

TEXT_METRICS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_1", "rouge_2", "rouge_l", "cider")

_PTB_CLASS = "edu.stanford.nlp.process.PTBTokenizer"


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise RuntimeError(
            "text metrics need Java on PATH: pycocoevalcap's PTB tokenizer and METEOR run Java jars"
        )
    return java


def _ptb_jar() -> str:
    from pycocoevalcap.tokenizer import ptbtokenizer

    jar = os.path.join(os.path.dirname(os.path.abspath(ptbtokenizer.__file__)), ptbtokenizer.STANFORD_CORENLP_3_4_1_JAR)
    if not os.path.isfile(jar):
        raise RuntimeError(f"Stanford CoreNLP jar not found at {jar}; reinstall pycocoevalcap")
    return jar


def _ptb_punctuations() -> frozenset[str]:
    from pycocoevalcap.tokenizer.ptbtokenizer import PUNCTUATIONS

    return frozenset(PUNCTUATIONS)


def _one_line(text: str) -> str:
    # PTBTokenizer runs with -preserveLines: one input line per text.
    return " ".join(text.splitlines()).strip()


def tokenize_many(texts: Sequence[str]) -> list[list[str]]:
    """Tokenise several texts with one Java call (see the module docstring)."""
    texts = list(texts)
    for t in texts:
        if not isinstance(t, str):
            raise TypeError(f"texts must be str, got {type(t).__name__}")
    lines = [_one_line(t) for t in texts]
    todo = [i for i, line in enumerate(lines) if line]
    out: list[list[str]] = [[] for _ in texts]
    if not todo:
        return out
    punct = _ptb_punctuations()
    cmd = [_java(), "-cp", _ptb_jar(), _PTB_CLASS, "-preserveLines", "-lowerCase", "-encoding", "utf-8"]
    with tempfile.TemporaryDirectory(prefix="kept_ptb_") as tmp:
        path = os.path.join(tmp, "sentences.txt")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines[i] for i in todo) + "\n")
        proc = subprocess.run(cmd + [path], capture_output=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"PTBTokenizer failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-2000:]}")
    got = proc.stdout.decode("utf-8").split("\n")
    while len(got) > len(todo) and not got[-1].strip():
        got.pop()
    if len(got) != len(todo):
        raise RuntimeError(f"PTBTokenizer returned {len(got)} lines for {len(todo)} inputs")
    for i, line in zip(todo, got):
        out[i] = [w for w in line.rstrip().split(" ") if w and w not in punct]
    return out


def tokenize(text: str) -> list[str]:
    """PTB tokens of ``text``: lower-cased, punctuation tokens of pycocoevalcap's PTBTokenizer dropped.

    >>> tokenize("The man's knees bend MORE, quickly!")  # doctest: +SKIP
    ['the', 'man', "'s", 'knees', 'bend', 'more', 'quickly']
    """
    return tokenize_many([text])[0]


class MeteorScorer:
    """One running METEOR 1.5 Java process (pycocoevalcap's ``Meteor``); close it when done.

    Usable as a context manager.  ``self.meteor`` is the underlying
    ``pycocoevalcap.meteor.meteor.Meteor`` instance.
    """

    def __init__(self) -> None:
        _java()
        from pycocoevalcap.meteor.meteor import Meteor

        self.meteor = Meteor()
        self._closed = False
        self._lock = threading.Lock()

    def compute_score(self, gts: dict, res: dict) -> float:
        """Corpus METEOR for pycocoevalcap-style ``gts``/``res`` (id -> list of token strings)."""
        if self._closed:
            raise RuntimeError("MeteorScorer is closed")
        # The jar's stdio protocol separates fields with '|||'; the wrapper removes it from hypotheses only.
        gts = {k: [r.replace("|||", "").replace("  ", " ") for r in v] for k, v in gts.items()}
        with self._lock:
            try:
                score, _ = self.meteor.compute_score(gts, res)
            except Exception as exc:
                if self.meteor.lock.locked():
                    self.meteor.lock.release()
                err = b""
                try:
                    self.close()
                    err = self.meteor.meteor_p.stderr.read() or b""
                except Exception:
                    pass
                raise RuntimeError(f"METEOR failed: {exc!r} {err.decode(errors='replace')[-2000:]}") from exc
        return float(score)

    def close(self) -> None:
        """Close stdin so the jar exits, wait for it (kill after 10 s)."""
        if self._closed:
            return
        self._closed = True
        p = self.meteor.meteor_p
        try:
            if p.stdin is not None and not p.stdin.closed:
                p.stdin.close()
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        finally:
            if p.stdout is not None:
                p.stdout.close()

    def __enter__(self) -> MeteorScorer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass


class _WhitespaceTokenizer:
    """rouge-score tokenizer for text that is already PTB-tokenised and joined with spaces."""

    def tokenize(self, text: str) -> list[str]:
        return text.split(" ") if text else []


def _normalise(references, hypotheses) -> tuple[list, dict[object, list[str]], dict[object, str]]:
    if not isinstance(references, Mapping) or not isinstance(hypotheses, Mapping):
        raise TypeError("references and hypotheses must be dicts keyed by pair id")
    if len(references) == 0 or len(hypotheses) == 0:
        raise ValueError("references and hypotheses must both be non-empty")
    only_ref = [k for k in references if k not in hypotheses]
    only_hyp = [k for k in hypotheses if k not in references]
    if only_ref or only_hyp:
        raise ValueError(
            f"pair ids differ: {len(only_ref)} only in references (e.g. {only_ref[:5]}), "
            f"{len(only_hyp)} only in hypotheses (e.g. {only_hyp[:5]})"
        )
    ids = list(references)
    refs: dict[object, list[str]] = {}
    hyps: dict[object, str] = {}
    for k in ids:
        r = references[k]
        r = [r] if isinstance(r, str) else r
        if not isinstance(r, Sequence) or len(r) == 0:
            raise ValueError(f"pair {k!r}: references must be a non-empty string or list of strings")
        for s in r:
            if not isinstance(s, str):
                raise TypeError(f"pair {k!r}: reference must be str, got {type(s).__name__}")
            if not s.strip():
                raise ValueError(f"pair {k!r}: empty reference string")
        h = hypotheses[k]
        if not isinstance(h, str):
            raise TypeError(f"pair {k!r}: hypothesis must be str, got {type(h).__name__}")
        refs[k] = list(r)
        hyps[k] = h  # empty hypotheses are allowed and score 0
    return ids, refs, hyps


def _tokenise_corpus(ids, refs, hyps) -> tuple[dict, dict]:
    texts: list[str] = []
    for k in ids:
        texts.extend(refs[k])
        texts.append(hyps[k])
    toks = iter(tokenize_many(texts))
    gts, res = {}, {}
    for k in ids:
        gts[k] = [" ".join(next(toks)) for _ in refs[k]]
        res[k] = [" ".join(next(toks))]
    return gts, res


def _scores(gts: dict, res: dict, meteor: MeteorScorer) -> dict[str, float]:
    """All metrics from pycocoevalcap-style tokenised ``gts``/``res`` (same keys, same order)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from rouge_score import rouge_scorer

    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge_l, _ = Rouge().compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    met = meteor.compute_score(gts, res)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2"], use_stemmer=False, tokenizer=_WhitespaceTokenizer())
    r1, r2 = [], []
    for k in gts:
        s = scorer.score_multi(gts[k], res[k][0])
        r1.append(s["rouge1"].fmeasure)
        r2.append(s["rouge2"].fmeasure)
    out = {f"bleu_{n + 1}": float(bleu[n]) for n in range(4)}
    out.update(
        meteor=float(met),
        rouge_1=float(np.mean(r1)),
        rouge_2=float(np.mean(r2)),
        rouge_l=float(rouge_l),
        cider=float(cider),
    )
    return {m: out[m] for m in TEXT_METRICS}


def text_metrics(
    references: dict[str, list[str]] | dict[str, str],
    hypotheses: dict[str, str],
    *,
    meteor: MeteorScorer | None = None,
) -> dict[str, float]:
    """Corpus-level captioning metrics (:data:`TEXT_METRICS`) over pairs keyed by id.

    ``references[id]`` is one reference string or a list of them; ``hypotheses[id]``
    is one string (may be empty: it then scores 0).  Raises ``ValueError`` for
    empty inputs, ids present on one side only, or empty references.
    """
    ids, refs, hyps = _normalise(references, hypotheses)
    gts, res = _tokenise_corpus(ids, refs, hyps)
    own = meteor is None
    meteor = MeteorScorer() if own else meteor
    try:
        return _scores(gts, res, meteor)
    finally:
        if own:
            meteor.close()


def evaluate_text(
    references,
    hypotheses,
    categories: dict[str, str],
    *,
    meteor: MeteorScorer | None = None,
) -> dict:
    """``{"text": {metric: value}, "per_category": {category: {metric: value}}}``.

    Every pair id must have a category (and ``categories`` must not name
    unknown ids).  Each category is scored as its own corpus (so CIDEr's IDF
    comes from that category's references; a one-pair category has CIDEr 0).
    Texts are tokenised once; one METEOR process serves all corpora.
    """
    ids, refs, hyps = _normalise(references, hypotheses)
    if not isinstance(categories, Mapping):
        raise TypeError("categories must be a dict pair id -> category")
    missing = [k for k in ids if k not in categories]
    extra = [k for k in categories if k not in refs]
    if missing or extra:
        raise ValueError(
            f"categories ids differ from pair ids: {len(missing)} pairs without a category (e.g. {missing[:5]}), "
            f"{len(extra)} unknown ids (e.g. {extra[:5]})"
        )
    gts, res = _tokenise_corpus(ids, refs, hyps)
    groups: dict[str, list] = {}
    for k in ids:
        groups.setdefault(categories[k], []).append(k)
    own = meteor is None
    meteor = MeteorScorer() if own else meteor
    try:
        result = {"text": _scores(gts, res, meteor), "per_category": {}}
        for cat in sorted(groups, key=str):
            ks = groups[cat]
            result["per_category"][cat] = _scores({k: gts[k] for k in ks}, {k: res[k] for k in ks}, meteor)
        return result
    finally:
        if own:
            meteor.close()
