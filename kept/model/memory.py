r"""Retrieval-augmented difference descriptions: the nearest described training pair in the
model's own reading of the two performances, with its verdict edited to agree with the scores.

Each described training pair (a, b) is stored under a key: the concatenation of the two
recordings' statistics-branch contributions per (segment, node) block, ``[c_a; c_b]`` (2 K B
numbers: where, in the model's view, each recording gains and loses score), or of their graph
embeddings ``[H_a; H_b]`` for a model without the statistics branch. A new pair gets the
description of the nearest key of the same sub-activity (all keys when the sub-activity is
unknown or has none), Euclidean distance. The order is kept, since descriptions speak of
Player 1 and Player 2.

The re-ranking (``text.rerank_parts`` = m > 0, models with the statistics branch): the key of a
pair holds each recording's score contribution per (segment, node) block, so the m most negative
blocks of each recording are where, in the model's view, it loses most score. Their node types,
as body-part words (:data:`kept.explain.grounding.NODE_WORDS`), are the parts the description
should name. Among the ``text.rerank_candidates`` nearest pairs, the description naming most of
them wins, less ``text.rerank_penalty`` for each other part it names; ties go to the nearer
pair. *Decision* (m = 4, 40 candidates, penalty 0.5, chosen on the demo's 67 val pairs with a
memory of train pairs only): body-part recall 0.52 -> 0.85 and fault-part recall 0.56 -> 0.92,
METEOR 0.253 -> 0.286, at a cost in CIDEr (0.529 -> 0.273) and BLEU-4 (0.191 -> 0.182); on the
462 test pairs (3 seeds) every figure rose: BLEU-4 0.200 -> 0.218, CIDEr 0.387 -> 0.517, body-part
recall 0.46 -> 0.77. m = 0 keeps the nearest pair.

The edit: the description's last sentence, when it states who is better
(:func:`kept.explain.grounding.verdict`), is replaced by the verdict of the model's own two
scores (:func:`kept.metrics.better_of`), written as the most common training sentence of that
verdict, so that the text never contradicts the scores.

*Decision* (``text.generator=retrieval``, the default): on the demo data's validation pairs this
beats both the retrieval baseline of ``kept baseline`` (hand-made features, any sub-activity)
and the from-scratch decoder on every captioning metric; ``text.generator=decoder`` trains the
decoder of docs/method.md section 7 instead.
"""

from __future__ import annotations

import collections
from typing import Any, Sequence

import torch
from torch import nn

__all__ = ["DescriptionMemory", "pair_keys", "descriptor"]


def descriptor(contrib: torch.Tensor | None, graph: torch.Tensor) -> torch.Tensor:
    """What a recording is remembered by: its block contributions when the model has the
    statistics branch, else its graph embedding.

    Shapes:
        contrib: (R, K, B) or None; graph: (R, P, D); returns: (R, K B) or (R, P D)
    """
    x = contrib if contrib is not None else graph
    x = torch.as_tensor(x)
    return x.reshape(x.shape[0], -1).float()


def pair_keys(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Keys of pairs from per-recording descriptors (contributions or graph embeddings).

    Shapes:
        first, second: (R, ...) the two recordings' descriptors; returns: (R, 2 M)
    """
    return torch.cat([first.reshape(first.shape[0], -1), second.reshape(second.shape[0], -1)], dim=1).float()


class DescriptionMemory(nn.Module):
    """Described training pairs, searchable by key (see the module docstring).

    Everything is kept in the module's extra state, so it saves and loads with ``state_dict``.

    Shapes:
        keys: (T, 2 M), one category name (or None) per key
        query keys: (R, 2 M), R category names (or None); verdicts: (R,) in {0, 1, 2}
        output: R strings
    """

    def __init__(self) -> None:
        super().__init__()
        self.keys = torch.zeros(0, 0)
        self.categories: list[str | None] = []
        self.texts: list[str] = []
        self.verdict_sentences: dict[int, str] = {}
        #: re-ranking (module docstring): each node's body-part words, one list per node type B
        #: (empty: keys are not contributions, no re-ranking), and (parts m, candidates, penalty)
        self.node_parts: list[tuple[str, ...]] = []
        self.rerank: tuple[int, int, float] = (0, 1, 0.0)
        self._parts_of: tuple[list[str] | None, list[set[str]]] = (None, [])  # (texts, their body parts), a cache

    def __len__(self) -> int:
        return len(self.texts)

    def fit(self, keys: torch.Tensor, categories: Sequence[str | None], texts: Sequence[str],
            node_parts: Sequence[Sequence[str]] = (), rerank: tuple[int, int, float] = (0, 1, 0.0)
            ) -> "DescriptionMemory":
        """Store the described pairs, and the most common verdict sentence of each verdict.

        Args:
            node_parts: for keys of block contributions, the body-part words of each of the B node
                types (the key of a recording is then (K B) values, node fastest); empty: no re-ranking.
            rerank: (``text.rerank_parts``, ``text.rerank_candidates``, ``text.rerank_penalty``).
        """
        from kept.explain.grounding import sentences, verdict

        if keys.ndim != 2 or keys.shape[0] != len(texts) or len(categories) != len(texts):
            raise ValueError(f"DescriptionMemory.fit: keys {tuple(keys.shape)}, {len(categories)} categories "
                             f"and {len(texts)} texts do not agree")
        if not len(texts):
            raise ValueError("DescriptionMemory.fit: no described pair to remember")
        self.keys, self.categories, self.texts = keys.float().clone(), list(categories), list(texts)
        counts: dict[int, collections.Counter] = {0: collections.Counter(), 1: collections.Counter(),
                                                  2: collections.Counter()}
        for text in texts:
            last = (sentences(text) or [""])[-1]
            v = verdict(last)
            if v is not None:
                counts[v][last] += 1
        fallback = {0: "Overall, the two performances are of similar quality.",
                    1: "Overall, Player 1 performs better.", 2: "Overall, Player 2 performs better."}
        self.verdict_sentences = {v: (c.most_common(1)[0][0] if c else fallback[v]) for v, c in counts.items()}
        self.node_parts = [tuple(p) for p in node_parts]
        if self.node_parts and self.keys.shape[1] % (2 * len(self.node_parts)):
            raise ValueError(f"DescriptionMemory.fit: keys of {self.keys.shape[1]} values are not two recordings' "
                             f"(K, B={len(self.node_parts)}) block contributions")
        self.rerank = (int(rerank[0]), int(rerank[1]), float(rerank[2]))
        return self

    def lost_parts(self, keys: torch.Tensor) -> list[set[str]]:
        """The body parts of each recording's ``rerank_parts`` most score-losing blocks, both
        recordings of each pair together (empty sets without re-ranking).

        Shapes:
            keys: (R, 2 K B); returns: R sets
        """
        m = self.rerank[0]
        if not m or not self.node_parts:
            return [set() for _ in range(keys.shape[0])]
        B = len(self.node_parts)
        out = []
        for key in keys.reshape(keys.shape[0], 2, -1):
            parts: set[str] = set()
            for side in key:
                lost = torch.argsort(side)[:m]
                parts.update(w for i in lost.tolist() if side[i] < 0 for w in self.node_parts[i % B])
            out.append(parts)
        return out

    def _distances(self, keys: torch.Tensor, categories: Sequence[str | None]) -> torch.Tensor:
        """Distances to every stored key, infinite to other categories (none masked when the
        category is None or has no stored pair). (R, T)"""
        if not len(self):
            raise RuntimeError("the description memory is empty: fit it first")
        if keys.ndim != 2 or keys.shape[1] != self.keys.shape[1]:
            raise ValueError(f"query keys of shape {tuple(keys.shape)}; the memory's have {self.keys.shape[1]} values")
        if len(categories) != keys.shape[0]:
            raise ValueError(f"{keys.shape[0]} query keys but {len(categories)} categories")
        dist = torch.cdist(keys.float(), self.keys)  # (R, T)
        for r, name in enumerate(categories):
            same = torch.tensor([c == name for c in self.categories])
            if name is not None and bool(same.any()):
                dist[r, ~same] = float("inf")
        return dist

    def nearest(self, keys: torch.Tensor, categories: Sequence[str | None]) -> torch.Tensor:
        """Index of the nearest stored pair of the same category (any category when the category
        is None or has no stored pair). (R,)"""
        return self._distances(keys, categories).argmin(dim=1)

    def choose(self, keys: torch.Tensor, categories: Sequence[str | None]) -> list[int]:
        """The stored pair whose description each query gets: the nearest, or the re-ranked
        choice among the nearest candidates of the same category (module docstring). R indices."""
        m, k, penalty = self.rerank
        if not m or not self.node_parts or k == 1:
            return self.nearest(keys, categories).tolist()
        dist = self._distances(keys, categories)
        near = torch.topk(dist, min(k, dist.shape[1]), dim=1, largest=False)  # nearest first
        parts = self._text_parts()
        chosen = []
        for r, wanted in enumerate(self.lost_parts(keys)):
            usable = [(rank, int(t)) for rank, (t, d) in enumerate(zip(near.indices[r], near.values[r]))
                      if torch.isfinite(d)]
            best = max(usable, key=lambda c: (len(parts[c[1]] & wanted) - penalty * len(parts[c[1]] - wanted), -c[0]))
            chosen.append(best[1])
        return chosen

    def _text_parts(self) -> list[set[str]]:
        """The body parts each stored description names (computed once per stored set)."""
        from kept.explain.grounding import body_parts

        if self._parts_of[0] is not self.texts:
            self._parts_of = (self.texts, [body_parts(t) for t in self.texts])
        return self._parts_of[1]

    def edit(self, text: str, verdict_of_scores: int) -> str:
        """``text`` with its closing verdict replaced by (or ended with) the scores' verdict."""
        from kept.explain.grounding import sentences, verdict

        said = sentences(text)
        if said and verdict(said[-1]) is not None:
            said = said[:-1]
        return " ".join(said + [self.verdict_sentences[int(verdict_of_scores)]])

    def describe(self, keys: torch.Tensor, categories: Sequence[str | None], verdicts: Sequence[int]) -> list[str]:
        """The edited descriptions of R pairs."""
        index = self.choose(keys, categories)
        return [self.edit(self.texts[i], v) for i, v in zip(index, verdicts)]

    def describe_scored(self, first: torch.Tensor, second: torch.Tensor, score_first: Sequence[float],
                        score_second: Sequence[float], categories: Sequence[str | None]) -> list[str]:
        """Descriptions of R scored pairs from their recordings' descriptors (:func:`descriptor`)
        and normalised scores, each verdict from :func:`kept.metrics.better_of`.

        Shapes:
            first, second: (R, M); score_first, score_second: (R,)
        """
        from kept.metrics import better_of

        verdicts = [better_of(float(a), float(b), (0.0, 1.0)) for a, b in zip(score_first, score_second)]
        return self.describe(pair_keys(first, second), categories, verdicts)

    def get_extra_state(self) -> dict[str, Any]:
        return {"keys": self.keys, "categories": self.categories, "texts": self.texts,
                "verdict_sentences": self.verdict_sentences, "node_parts": self.node_parts, "rerank": self.rerank}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.keys, self.categories = state["keys"], list(state["categories"])
        self.texts, self.verdict_sentences = list(state["texts"]), dict(state["verdict_sentences"])
        self.node_parts = [tuple(p) for p in state.get("node_parts", [])]  # older files: the nearest pair
        self.rerank = tuple(state.get("rerank", (0, 1, 0.0)))
