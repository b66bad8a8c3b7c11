r"""KEPT's text branch: the difference-description decoder of docs/method.md section 7.

    H_i    = mean_k H_i[k]                                   graph of recording i       (R, P, D)
    T_KG^i = F_H(H_i)                                        graph tokens               (R, P, d')
    T_dKG  = F_dH([H_1 - H_2 ; H_2 - H_1])                   residual graph tokens      (R, 2P, d')
    prefix = [T_KG^1; T_KG^2; T_dKG; E(prompt)]               decoder prefix             (R, L_prefix, d')
    L_ce      = CE(LM([prefix; E(bos, y_1 .. y_L)]), y)       teacher forcing
    L_comment = 1 - cos(f_C(y_ref), f_C(softmax(logits) W_C)) differentiable surrogate

The decoder is any Hugging Face causal language model; by default a small GPT-2 built from a
config (random initialisation) that shares the bundled all-MiniLM-L6-v2 tokenizer, so that the
expected token embeddings under the decoder's distribution can be fed to the frozen sentence
encoder (*decision* of docs/method.md section 7: the paper's L_comment embeds sampled text, which has no
gradient).

Shapes glossary: R recordings (pairs), K segments, P joints, D graph width, d' decoder width,
L description length (tokens, with the final [SEP]/eos), L_prefix prefix length, V vocabulary,
E sentence-embedding size, W sentence-encoder word-embedding width.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kept.config import DEFAULT_PROMPT, DecoderConfig  # noqa: F401 (re-exported)
from kept.model.layers import MLP

__all__ = [
    "DecoderConfig",
    "DifferenceDecoder",
    "GraphTokens",
    "build_decoder",
    "load_sentence_encoder_for_surrogate",
    "reference_sentence_embedding",
    "surrogate_sentence_embedding",
]

def _minilm_path() -> str:
    from kept.commentary import default_sentence_encoder

    return default_sentence_encoder()


def _special_ids(tokenizer) -> tuple[int, int, int]:
    """(bos, eos, pad) ids: BERT tokenizers use [CLS], [SEP], [PAD]; others fall back to eos."""
    bos = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    eos = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    if bos is None:
        bos = eos
    if eos is None:
        raise ValueError(f"tokenizer {tokenizer.name_or_path!r} has neither an eos nor a [SEP] token")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    return int(bos), int(eos), int(pad)


def build_decoder(cfg: DecoderConfig) -> tuple[Any, Any]:
    """The causal language model and its tokenizer.

    ``cfg.model`` None: a :class:`transformers.GPT2LMHeadModel` built from a ``GPT2Config``
    (``cfg.layers`` blocks, ``cfg.heads`` heads, width ``cfg.hidden``, ``cfg.max_positions``
    learned positions, tied input/output embeddings), randomly initialised, with the vocabulary of
    the tokenizer (the bundled MiniLM one by default: [CLS] as bos, [SEP] as eos, [PAD] as pad).
    Otherwise ``AutoModelForCausalLM.from_pretrained(cfg.model)``, wrapped with peft LoRA adapters
    when ``cfg.lora_rank > 0`` (only the adapters train then; without LoRA the whole model trains).

    Returns:
        (model, tokenizer); ``model.config`` carries the bos/eos/pad ids used by
        :class:`DifferenceDecoder`.
    """
    from transformers import AutoTokenizer

    tok_path = cfg.tokenizer or (cfg.model if cfg.model is not None else _minilm_path())
    tokenizer = AutoTokenizer.from_pretrained(tok_path)
    bos, eos, pad = _special_ids(tokenizer)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(pad)
    if cfg.model is None:
        if cfg.lora_rank > 0:
            raise ValueError("decoder.lora_rank > 0 needs a pretrained decoder (decoder.model=PATH)")
        if cfg.hidden % cfg.heads:
            raise ValueError(f"decoder.hidden={cfg.hidden} must be divisible by decoder.heads={cfg.heads}")
        from transformers import GPT2Config, GPT2LMHeadModel

        config = GPT2Config(
            vocab_size=len(tokenizer), n_positions=cfg.max_positions, n_embd=cfg.hidden, n_layer=cfg.layers,
            n_head=cfg.heads, resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout,
            bos_token_id=bos, eos_token_id=eos, pad_token_id=pad, tie_word_embeddings=True,
        )
        model = GPT2LMHeadModel(config)
        model.loss_type = "ForCausalLM"  # the config has none; silences transformers' fallback warning
    else:
        from transformers import AutoModelForCausalLM

        try:
            model = AutoModelForCausalLM.from_pretrained(cfg.model)
        except Exception as err:
            raise RuntimeError(f"could not load decoder '{cfg.model}': {err}. Give a local model folder.") from err
        if model.get_input_embeddings().num_embeddings < len(tokenizer):
            model.resize_token_embeddings(len(tokenizer))
        if cfg.lora_rank > 0:
            try:
                from peft import LoraConfig, get_peft_model
            except ImportError:
                raise ImportError("decoder.lora_rank > 0 needs the package 'peft': pip install peft") from None
            lora = LoraConfig(r=cfg.lora_rank, lora_alpha=2 * cfg.lora_rank, target_modules="all-linear",
                              task_type="CAUSAL_LM")
            model = get_peft_model(model, lora)
    for key, value in (("bos_token_id", bos), ("eos_token_id", eos), ("pad_token_id", pad)):
        setattr(model.config, key, value)
        if getattr(model, "generation_config", None) is not None:
            setattr(model.generation_config, key, value)
    return model, tokenizer


class GraphTokens(nn.Module):
    r"""Graph tokens of a pair: the prefix that carries the two keypoint graphs to the decoder.

    .. math::
        T_{KG}^i = F_H(H_i), \qquad T_{dKG} = F_{dH}([H_1 - H_2;\ H_2 - H_1])

    where the two halves of the residual are stacked along the token axis (2P tokens) and
    F_dH is a separate MLP (*decision*, docs/method.md section 7: the paper's shapes do not close).

    Args:
        graph_dim (int): D.
        token_dim (int): d', the decoder's embedding size.
        use_residual (bool): False drops T_dKG (ablation "without residual graph tokens").
        dropout (float): dropout inside the MLPs.

    Shapes:
        h1, h2: (R, P, D)
        output: (R, 4P, d') = [T_KG^1; T_KG^2; T_dKG], or (R, 2P, d') without residual tokens
    """

    def __init__(self, graph_dim: int, token_dim: int, use_residual: bool = True, dropout: float = 0.0):
        super().__init__()
        self.use_residual = use_residual
        self.f_h = MLP(graph_dim, token_dim, dropout=dropout)  # F_H
        self.f_dh = MLP(graph_dim, token_dim, dropout=dropout) if use_residual else None  # F_dH

    def forward(self, h1: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
        tokens = [self.f_h(h1), self.f_h(h2)]
        if self.use_residual:
            diff = torch.cat([h1 - h2, h2 - h1], dim=1)  # (R, 2P, D)
            tokens.append(self.f_dh(diff))
        return torch.cat(tokens, dim=1)


def _mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the tokens where ``mask`` is 1, as sentence-transformers' Pooling(mean). (R, E)"""
    m = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)


def load_sentence_encoder_for_surrogate(path: str | None = None) -> tuple[nn.Module, torch.Tensor]:
    """The frozen sentence encoder (a transformers ``BertModel``) and its word-embedding table.

    Args:
        path: local folder of a sentence-transformers BERT model (default: bundled all-MiniLM-L6-v2).

    Returns:
        (encoder in eval mode with ``requires_grad`` off, word-embedding weight (V, W)).
    """
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(path or _minilm_path())
    encoder.eval()
    encoder.requires_grad_(False)
    return encoder, encoder.get_input_embeddings().weight


def surrogate_sentence_embedding(encoder: nn.Module, inputs_embeds: torch.Tensor,
                                 attention_mask: torch.Tensor) -> torch.Tensor:
    """Sentence embedding of word embeddings: the encoder's last hidden state, mean-pooled.

    Shapes:
        inputs_embeds: (R, L, W)
        attention_mask: (R, L)
        output: (R, E), not normalised (cosine does not care)
    """
    out = encoder(inputs_embeds=inputs_embeds, attention_mask=attention_mask)
    return _mean_pool(out.last_hidden_state, attention_mask)


@torch.no_grad()
def reference_sentence_embedding(encoder: nn.Module, tokenizer, texts: list[str]) -> torch.Tensor:
    """f_C of reference texts through the same path as the surrogate ([CLS] text [SEP], mean pool).

    Equals sentence-transformers' ``encode`` of all-MiniLM-L6-v2 up to the final L2 normalisation.

    Shapes:
        output: (len(texts), E)
    """
    device = next(encoder.parameters()).device
    enc = tokenizer(texts, padding=True, return_tensors="pt").to(device)
    out = encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    return _mean_pool(out.last_hidden_state, enc["attention_mask"])


class DifferenceDecoder(nn.Module):
    r"""Generates the description of the action difference between two recordings (docs/method.md section 7).

    The causal LM reads ``[T_KG^1; T_KG^2; T_dKG; E(prompt)]`` as a prefix of input embeddings,
    then ``[bos] y_1 .. y_L`` (teacher forcing) or its own tokens (generation).

    .. math::
        L_{ce} = -\frac{1}{\sum_r L_r} \sum_{r,j} \log p(y_{r,j} \mid \mathrm{prefix}_r, y_{r,<j})

        L_{comment} = 1 - \cos\big(f_C(y_{ref}),\ f_C(\mathrm{softmax}(z) W_C)\big)

    Args:
        graph_dim (int): D, the width of KEPT's graph embedding H.
        cfg (DecoderConfig): decoder settings.
        lm: a Hugging Face causal LM (default: :func:`build_decoder`).
        tokenizer: its tokenizer (needed when ``lm`` is given).

    Shapes:
        h1, h2: (R, P, D) or (R, K, P, D) (averaged over the K segments: H_i = mean_k H_i[k])
        input_ids, attention_mask: (R, L) description tokens ending with eos, as :meth:`tokenize` gives
        prefix: (R, L_prefix, d'), L_prefix = 4P (2P without residual tokens) + prompt tokens
        logits: (R, L, V), ``logits[:, j]`` is the distribution of ``input_ids[:, j]``
    """

    def __init__(self, graph_dim: int, cfg: DecoderConfig, lm=None, tokenizer=None):
        super().__init__()
        if lm is None:
            lm, built_tok = build_decoder(cfg)
            tokenizer = tokenizer or built_tok
        elif tokenizer is None:
            raise ValueError("DifferenceDecoder: give the tokenizer together with lm")
        self.cfg = cfg
        self.lm = lm
        self.tokenizer = tokenizer
        self.bos_id, self.eos_id, self.pad_id = _special_ids(tokenizer)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.convert_ids_to_tokens(self.pad_id)
        token_dim = self.lm.get_input_embeddings().embedding_dim
        self.graph_tokens = GraphTokens(graph_dim, token_dim, cfg.use_residual)
        prompt = tokenizer(cfg.prompt, add_special_tokens=False)["input_ids"] if cfg.prompt else []
        self.register_buffer("prompt_ids", torch.tensor(prompt, dtype=torch.long), persistent=False)
        #: the tokens greedy decoding may emit (:meth:`restrict_vocabulary`); all by default
        self.register_buffer("vocab_mask", torch.ones(self.vocab_size, dtype=torch.bool))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        state_dict.setdefault(prefix + "vocab_mask", torch.ones(self.vocab_size, dtype=torch.bool))  # older files
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def restrict_vocabulary(self, texts: list[str]) -> int:
        """Let greedy decoding emit only the tokens of ``texts`` (the training descriptions) and
        the end token; returns how many. *Decision* (``text.restrict_vocab``): the output layer
        then runs over those rows only, which makes a decoding step of the default decoder
        several times cheaper, and a token never seen in a training description is never written.
        """
        ids = self.tokenize(texts)[0].unique()
        mask = torch.zeros_like(self.vocab_mask)
        mask[ids] = True
        mask[self.pad_id] = False  # padding of the tokenised texts, never written
        mask[self.eos_id] = True
        self.vocab_mask.copy_(mask)
        return int(mask.sum())

    @property
    def vocab_size(self) -> int:
        return self.lm.get_output_embeddings().weight.shape[0]

    def _max_positions(self) -> int | None:
        config = self.lm.config
        for key in ("n_positions", "max_position_embeddings"):
            value = getattr(config, key, None)
            if isinstance(value, int):
                return value
        return None

    def _check_length(self, total: int) -> None:
        limit = self._max_positions()
        if limit is not None and total > limit:
            raise ValueError(f"decoder sequence of {total} positions (prefix + bos + description) exceeds the "
                             f"decoder's {limit} positions; raise decoder.max_positions or shorten the prompt")

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Description tokens ending with eos, truncated to ``cfg.max_length`` and right-padded.

        Shapes:
            output: input_ids (R, L) long, attention_mask (R, L) long
        """
        ids = [self.tokenizer(t, add_special_tokens=False)["input_ids"][: self.cfg.max_length - 1] + [self.eos_id]
               for t in texts]
        L = max(len(i) for i in ids)
        input_ids = torch.full((len(ids), L), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), L), dtype=torch.long)
        for r, seq in enumerate(ids):
            input_ids[r, : len(seq)] = torch.tensor(seq)
            mask[r, : len(seq)] = 1
        device = self.prompt_ids.device
        return input_ids.to(device), mask.to(device)

    def prefix(self, h1: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
        """[T_KG^1; T_KG^2; T_dKG; embedded prompt]. (R, L_prefix, d')"""
        if h1.dim() == 4:
            h1, h2 = h1.mean(dim=1), h2.mean(dim=1)
        embed = self.lm.get_input_embeddings()
        tokens = self.graph_tokens(h1, h2).to(embed.weight.dtype)
        if self.prompt_ids.numel():
            prompt = embed(self.prompt_ids).unsqueeze(0).expand(tokens.shape[0], -1, -1)
            tokens = torch.cat([tokens, prompt], dim=1)
        return tokens

    def build_labels(self, prefix_length: int, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Labels aligned with ``[prefix; bos; input_ids]``: -100 on the prefix, bos and padding.

        The LM shifts them (position t predicts label t + 1), so bos predicts y_1.

        Shapes:
            output: (R, L_prefix + 1 + L)
        """
        R = input_ids.shape[0]
        labels = input_ids.masked_fill(attention_mask == 0, -100)
        ignore = labels.new_full((R, prefix_length + 1), -100)
        return torch.cat([ignore, labels], dim=1)

    def forward(self, h1: torch.Tensor, h2: torch.Tensor, input_ids: torch.Tensor,
                attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Teacher forcing.

        Returns:
            dict with ``loss_ce`` (scalar, mean over description tokens) and ``logits`` (R, L, V)
            of the description positions (``logits[:, j]`` predicts ``input_ids[:, j]``).
        """
        prefix = self.prefix(h1, h2)
        R, Lp, _ = prefix.shape
        self._check_length(Lp + 1 + input_ids.shape[1])
        embed = self.lm.get_input_embeddings()
        bos = torch.full((R, 1), self.bos_id, dtype=torch.long, device=input_ids.device)
        tokens = embed(torch.cat([bos, input_ids.masked_fill(attention_mask == 0, self.pad_id)], dim=1))
        inputs_embeds = torch.cat([prefix, tokens], dim=1)
        mask = torch.cat([attention_mask.new_ones((R, Lp + 1)), attention_mask], dim=1)
        L = input_ids.shape[1]
        # only the L + 1 positions from [bos] on need logits (the prefix predicts nothing): with a
        # 30k vocabulary the LM head dominates the cost, so skipping the prefix's logits matters
        out = self.lm(inputs_embeds=inputs_embeds, attention_mask=mask, logits_to_keep=L + 1)
        logits = out.logits[:, -(L + 1):-1]  # (R, L, V): logits[:, j] predicts input_ids[:, j]
        target = input_ids.masked_fill(attention_mask == 0, -100)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1), ignore_index=-100)
        return {"loss_ce": loss, "logits": logits}

    def comment_loss(self, logits: torch.Tensor, attention_mask: torch.Tensor, sentence_encoder: nn.Module,
                     target_embedding: torch.Tensor) -> torch.Tensor:
        r"""Differentiable surrogate of L_comment = 1 - cos(f_C_ref, f_C_gen) (docs/method.md section 7, *decision*).

        The generated description is replaced by its expected word embeddings under the decoder's
        teacher-forced distribution, ``e_j = softmax(z_j) W_C``, preceded by the encoder's [CLS]
        embedding (the description already ends with [SEP]); the frozen sentence encoder embeds
        that sequence and mean-pools over ``attention_mask``. With one-hot distributions on the
        reference tokens this is exactly the reference's sentence embedding.

        Args:
            logits: (R, L, V) from :meth:`forward`.
            attention_mask: (R, L) of the description tokens.
            sentence_encoder: frozen transformers ``BertModel`` sharing the decoder's vocabulary.
            target_embedding: (R, E) f_C of the reference descriptions (any scale).

        Returns:
            (R,) loss per pair.
        """
        table = sentence_encoder.get_input_embeddings().weight  # (V, W)
        if table.shape[0] != logits.shape[-1] or table.shape[0] != len(self.tokenizer):
            raise ValueError(
                f"comment_loss needs the decoder and the sentence encoder to share a vocabulary: the decoder "
                f"predicts {logits.shape[-1]} tokens (tokenizer: {len(self.tokenizer)}), the sentence encoder "
                f"embeds {table.shape[0]}; use the default decoder tokenizer (bundled MiniLM) or set loss weight 0")
        cls_id = getattr(sentence_encoder.config, "cls_token_id", None) or self.bos_id
        top = self.cfg.comment_top_k
        if top and top < logits.shape[-1]:
            # *decision*: the expectation over the k likeliest tokens (renormalised) instead of all V,
            # k/V of the cost; exact whenever the distribution puts its mass on k tokens
            val, idx = logits.topk(top, dim=-1)  # (R, L, k)
            words = torch.einsum("rlk,rlkw->rlw", val.softmax(dim=-1).to(table.dtype), table[idx])
        else:
            words = logits.softmax(dim=-1).to(table.dtype) @ table  # (R, L, W)
        cls = table[cls_id].expand(words.shape[0], 1, -1)
        inputs_embeds = torch.cat([cls, words], dim=1)
        mask = torch.cat([attention_mask.new_ones((words.shape[0], 1)), attention_mask], dim=1)
        generated = surrogate_sentence_embedding(sentence_encoder, inputs_embeds, mask)
        return 1.0 - F.cosine_similarity(generated, target_embedding.to(generated), dim=-1)

    @torch.no_grad()
    def generate(self, h1: torch.Tensor, h2: torch.Tensor, max_new_tokens: int | None = None,
                 num_beams: int | None = None, no_repeat_ngram: int | None = None) -> list[str]:
        """Descriptions of R pairs, batched: greedy (``num_beams=1``) or beam search.

        Greedy decoding runs its own loop: the prefix's keys and values are cached after the
        first step, the output layer covers only the allowed tokens (:meth:`restrict_vocabulary`),
        an n-gram that would repeat one already written is blocked (``no_repeat_ngram``; 0: off),
        and the loop stops when every description has ended. Beam search goes through the
        language model's ``generate``.

        Args:
            max_new_tokens, num_beams, no_repeat_ngram: default ``text.max_length``,
                ``text.num_beams``, ``text.no_repeat_ngram``.

        Shapes:
            h1, h2: (R, P, D) or (R, K, P, D)

        Returns:
            R strings, special tokens removed.
        """
        max_new_tokens = max_new_tokens or self.cfg.max_length
        num_beams = num_beams or self.cfg.num_beams
        n_block = self.cfg.no_repeat_ngram if no_repeat_ngram is None else no_repeat_ngram
        prefix = self.prefix(h1, h2)
        R, Lp, _ = prefix.shape
        self._check_length(Lp + 1 + max_new_tokens)
        embed = self.lm.get_input_embeddings()
        bos = embed(torch.full((R, 1), self.bos_id, dtype=torch.long, device=prefix.device))
        inputs_embeds = torch.cat([prefix, bos], dim=1)
        was_training = self.lm.training
        self.lm.eval()  # no dropout while decoding
        try:
            if num_beams > 1:
                mask = torch.ones(inputs_embeds.shape[:2], dtype=torch.long, device=prefix.device)
                out = self.lm.generate(inputs_embeds=inputs_embeds, attention_mask=mask, max_new_tokens=max_new_tokens,
                                       num_beams=num_beams, do_sample=False, eos_token_id=self.eos_id,
                                       pad_token_id=self.pad_id, bos_token_id=self.bos_id,
                                       no_repeat_ngram_size=n_block)
                return self.tokenizer.batch_decode(out, skip_special_tokens=True)
            tokens = self._greedy(inputs_embeds, max_new_tokens, n_block)
        finally:
            self.lm.train(was_training)
        return self.tokenizer.batch_decode(tokens, skip_special_tokens=True)

    def _greedy(self, inputs_embeds: torch.Tensor, max_new_tokens: int, n_block: int) -> list[list[int]]:
        """The greedy loop of :meth:`generate`; returns each description's token ids (eos excluded)."""
        from transformers import DynamicCache

        body, head, embed = self.lm.get_decoder(), self.lm.get_output_embeddings(), self.lm.get_input_embeddings()
        allowed = self.vocab_mask.nonzero().squeeze(1)  # (V',)
        weight = head.weight[allowed]
        bias = head.bias[allowed] if getattr(head, "bias", None) is not None else None
        where = torch.full((self.vocab_size,), -1, dtype=torch.long)
        where[allowed] = torch.arange(len(allowed))
        R = inputs_embeds.shape[0]
        cache, x = DynamicCache(), inputs_embeds
        written: list[list[int]] = [[] for _ in range(R)]
        seen: list[dict[tuple, set]] = [{} for _ in range(R)]  # (n-1)-gram -> tokens that followed it
        done = [False] * R
        for _ in range(max_new_tokens):
            hidden = body(inputs_embeds=x, cache=cache, use_cache=True).last_hidden_state[:, -1]  # (R, d')
            logits = F.linear(hidden, weight, bias)  # (R, V')
            if n_block > 0:
                for r in range(R):
                    if not done[r] and len(written[r]) >= n_block - 1:
                        banned = seen[r].get(tuple(written[r][len(written[r]) - n_block + 1:]), ())
                        for t in banned:
                            if where[t] >= 0:
                                logits[r, where[t]] = float("-inf")
            nxt = allowed[logits.argmax(dim=-1)].tolist()
            for r, t in enumerate(nxt):
                if done[r]:
                    continue
                if t == self.eos_id:
                    done[r] = True
                    continue
                if n_block > 0 and len(written[r]) >= n_block - 1:
                    seen[r].setdefault(tuple(written[r][len(written[r]) - n_block + 1:]), set()).add(t)
                written[r].append(t)
            if all(done):
                break
            x = embed(torch.as_tensor(nxt, device=inputs_embeds.device))[:, None]
        return written
