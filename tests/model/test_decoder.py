"""The difference-description decoder (docs/method.md section 7): tiny from-scratch GPT-2, MiniLM vocabulary."""

import pytest
import torch
import torch.nn.functional as F

from kept.model.decoder import (
    DecoderConfig,
    DifferenceDecoder,
    GraphTokens,
    build_decoder,
    load_sentence_encoder_for_surrogate,
    reference_sentence_embedding,
)

P, D = 5, 8
TEXTS = ["the knee bends less", "player two squats deeper than player one"]


def _cfg(**kw):
    return DecoderConfig(**{"layers": 1, "hidden": 32, "heads": 4, "dropout": 0.0, **kw})


def _decoder(**kw):
    torch.manual_seed(0)
    return DifferenceDecoder(D, _cfg(**kw))


def _graphs(R=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(R, P, D, generator=g), torch.randn(R, P, D, generator=g)


@pytest.fixture(scope="module")
def encoder():
    return load_sentence_encoder_for_surrogate()


def test_graph_tokens_shapes():
    h1, h2 = _graphs(3)
    assert GraphTokens(D, 32)(h1, h2).shape == (3, 4 * P, 32)
    assert GraphTokens(D, 32, use_residual=False)(h1, h2).shape == (3, 2 * P, 32)


def test_prefix_shapes_with_and_without_residual():
    h1, h2 = _graphs()
    dec = _decoder()
    n_prompt = dec.prompt_ids.numel()
    assert n_prompt > 0
    assert dec.prefix(h1, h2).shape == (2, 4 * P + n_prompt, 32)
    assert _decoder(use_residual=False).prefix(h1, h2).shape == (2, 2 * P + n_prompt, 32)
    assert _decoder(prompt="").prefix(h1, h2).shape == (2, 4 * P, 32)
    # per-segment H (R, K, P, D) is averaged over the segments
    hk1, hk2 = h1.unsqueeze(1).expand(-1, 3, -1, -1), h2.unsqueeze(1).expand(-1, 3, -1, -1)
    torch.testing.assert_close(dec.prefix(hk1, hk2), dec.prefix(h1, h2))


def test_default_decoder_shares_minilm_tokenizer():
    lm, tok = build_decoder(_cfg())
    assert lm.config.vocab_size == len(tok) == 30522
    assert (lm.config.bos_token_id, lm.config.eos_token_id, lm.config.pad_token_id) == (
        tok.cls_token_id, tok.sep_token_id, tok.pad_token_id)
    with pytest.raises(ValueError, match="pretrained"):
        build_decoder(_cfg(lora_rank=4))


def test_teacher_forcing_loss_and_gradients():
    dec = _decoder()
    h1, h2 = _graphs()
    ids, mask = dec.tokenize(TEXTS)
    assert (ids[mask.bool()].view(-1) == dec.eos_id).sum() == 2  # each ends with eos
    out = dec(h1, h2, ids, mask)
    assert torch.isfinite(out["loss_ce"])
    assert out["logits"].shape == (2, ids.shape[1], dec.vocab_size)
    out["loss_ce"].backward()
    for name, module in [("F_H", dec.graph_tokens.f_h), ("F_dH", dec.graph_tokens.f_dh),
                         ("LM", dec.lm.transformer.h[0])]:
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads), name


def test_labels_ignore_prefix_and_padding():
    dec = _decoder()
    h1, h2 = _graphs()
    ids, mask = dec.tokenize(TEXTS)
    Lp = dec.prefix(h1, h2).shape[1]
    labels = dec.build_labels(Lp, ids, mask)
    assert labels.shape == (2, Lp + 1 + ids.shape[1])
    assert (labels[:, : Lp + 1] == -100).all()
    assert (labels[:, Lp + 1:][mask == 0] == -100).all()
    out = dec(h1, h2, ids, mask)
    # loss equals a manual cross-entropy over the description tokens only
    manual = F.cross_entropy(out["logits"][mask.bool()], ids[mask.bool()])
    torch.testing.assert_close(out["loss_ce"], manual)
    # whatever sits in the padded positions of input_ids changes nothing
    noisy = ids.masked_fill(mask == 0, 1234)
    torch.testing.assert_close(dec(h1, h2, noisy, mask)["loss_ce"], out["loss_ce"])
    # the LM's own loss with arbitrary labels on the prefix positions replaced by -100 agrees
    prefix = dec.prefix(h1, h2)
    emb = dec.lm.get_input_embeddings()
    bos = torch.full((2, 1), dec.bos_id)
    x = torch.cat([prefix, emb(torch.cat([bos, ids], 1))], 1)
    m = torch.cat([torch.ones(2, Lp + 1, dtype=torch.long), mask], 1)
    junk = labels.clone()
    junk[:, :Lp] = torch.randint(0, 100, (2, Lp))
    assert not torch.isclose(dec.lm(inputs_embeds=x, attention_mask=m, labels=junk).loss, out["loss_ce"])
    torch.testing.assert_close(dec.lm(inputs_embeds=x, attention_mask=m, labels=labels).loss, out["loss_ce"])


def test_comment_loss_gradient_and_one_hot(encoder):
    sentence_encoder, table = encoder
    assert not any(p.requires_grad for p in sentence_encoder.parameters())
    dec = _decoder()
    h1, h2 = _graphs()
    ids, mask = dec.tokenize(TEXTS)
    target = reference_sentence_embedding(sentence_encoder, dec.tokenizer, TEXTS)
    out = dec(h1, h2, ids, mask)
    logits = out["logits"]
    logits.retain_grad()
    loss = dec.comment_loss(logits, mask, sentence_encoder, target)
    assert loss.shape == (2,) and torch.isfinite(loss).all() and (loss > 0.05).all()
    loss.sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    assert dec.graph_tokens.f_h[0].weight.grad.abs().sum() > 0
    # all mass on the reference tokens: the surrogate is the reference embedding itself
    one_hot = torch.full((2, ids.shape[1], table.shape[0]), -1e4)
    one_hot.scatter_(2, ids.unsqueeze(-1), 1e4)
    exact = dec.comment_loss(one_hot, mask, sentence_encoder, target)
    assert exact.abs().max() < 1e-4
    # and it matches the sentence-transformers embedding of the bundled model
    from kept.commentary import SentenceEmbedder

    st = torch.from_numpy(SentenceEmbedder().encode(TEXTS))
    assert dec.comment_loss(one_hot, mask, sentence_encoder, st).abs().max() < 1e-4


def test_comment_loss_rejects_mismatched_vocabulary(encoder):
    from transformers import GPT2Config, GPT2LMHeadModel

    sentence_encoder, _ = encoder
    _, tok = build_decoder(_cfg())
    tok.add_tokens(["<extra_token>"])
    torch.manual_seed(0)
    lm = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=32, n_layer=1, n_head=4))
    dec = DifferenceDecoder(D, _cfg(), lm=lm, tokenizer=tok)
    h1, h2 = _graphs()
    ids, mask = dec.tokenize(TEXTS)
    logits = dec(h1, h2, ids, mask)["logits"]
    with pytest.raises(ValueError, match="share a vocabulary"):
        dec.comment_loss(logits, mask, sentence_encoder, torch.randn(2, 384))


def test_generate_greedy_and_beam():
    dec = _decoder()
    h1, h2 = _graphs(3)
    greedy = dec.generate(h1, h2, max_new_tokens=4)
    assert len(greedy) == 3 and all(isinstance(s, str) for s in greedy)
    assert all(len(dec.tokenizer(s, add_special_tokens=False)["input_ids"]) <= 4 for s in greedy)
    assert dec.generate(h1, h2, max_new_tokens=4) == greedy
    beam = dec.generate(h1, h2, max_new_tokens=4, num_beams=3)
    assert len(beam) == 3 and all(isinstance(s, str) for s in beam)
    with pytest.raises(ValueError, match="positions"):
        dec.generate(h1, h2, max_new_tokens=10_000)


def test_overfits_two_pairs():
    dec = _decoder(hidden=64)
    h1, h2 = _graphs()
    ids, mask = dec.tokenize(TEXTS)
    opt = torch.optim.Adam(dec.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        loss = dec(h1, h2, ids, mask)["loss_ce"]
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first
    out = dec.generate(h1, h2, max_new_tokens=12)
    assert out == TEXTS


def _hf_greedy(dec, h1, h2, max_new_tokens):
    """The language model's own generate, the naive form of the cached greedy loop."""
    prefix = dec.prefix(h1, h2)
    bos = dec.lm.get_input_embeddings()(torch.full((prefix.shape[0], 1), dec.bos_id))
    x = torch.cat([prefix, bos], dim=1)
    with torch.no_grad():
        out = dec.lm.eval().generate(inputs_embeds=x, attention_mask=torch.ones(x.shape[:2], dtype=torch.long),
                                     max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=dec.eos_id,
                                     pad_token_id=dec.pad_id, bos_token_id=dec.bos_id)
    return dec.tokenizer.batch_decode(out, skip_special_tokens=True)


def test_cached_greedy_loop_equals_the_language_models_generate():
    dec = _decoder()
    h1, h2 = _graphs(3)
    assert dec.generate(h1, h2, max_new_tokens=12, no_repeat_ngram=0) == _hf_greedy(dec, h1, h2, 12)


def test_greedy_stops_at_the_end_token_per_description():
    dec = _decoder(hidden=64)
    h1, h2 = _graphs()
    ids, mask = dec.tokenize(TEXTS)
    opt = torch.optim.Adam(dec.parameters(), lr=3e-3)
    for _ in range(60):
        loss = dec(h1, h2, ids, mask)["loss_ce"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    calls = []
    body = dec.lm.get_decoder()
    hook = body.register_forward_hook(lambda *a: calls.append(1))
    assert dec.generate(h1, h2, max_new_tokens=40) == TEXTS
    hook.remove()
    longest = max(len(dec.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in TEXTS)
    assert len(calls) == longest + 1  # the longest description and its end token, not 40 steps


def test_no_repeat_ngram_blocks_every_repeated_ngram():
    dec = _decoder()
    h1, h2 = _graphs(3)
    free = dec.generate(h1, h2, max_new_tokens=30, no_repeat_ngram=0)
    blocked = dec.generate(h1, h2, max_new_tokens=30, no_repeat_ngram=2)

    def repeats(text, n):
        ids = dec.tokenizer(text, add_special_tokens=False)["input_ids"]
        grams = [tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)]
        return len(grams) - len(set(grams))

    assert sum(repeats(t, 2) for t in free) > 0  # an untrained decoder repeats itself
    assert all(repeats(t, 2) == 0 for t in blocked)


def test_restricted_vocabulary_only_emits_its_tokens_and_survives_a_round_trip():
    dec = _decoder()
    h1, h2 = _graphs(3)
    n = dec.restrict_vocabulary(TEXTS)
    allowed = set(dec.tokenize(TEXTS)[0].flatten().tolist()) | {dec.eos_id}
    assert n == len(allowed - ({dec.pad_id} if dec.pad_id != dec.eos_id else set()))
    for text in dec.generate(h1, h2, max_new_tokens=20, no_repeat_ngram=0):
        assert set(dec.tokenizer(text, add_special_tokens=False)["input_ids"]) <= allowed
    fresh = _decoder()
    fresh.load_state_dict(dec.state_dict())
    assert torch.equal(fresh.vocab_mask, dec.vocab_mask)
    old = {k: v for k, v in dec.state_dict().items() if k != "vocab_mask"}  # a file from before the mask
    fresh.load_state_dict(old)
    assert bool(fresh.vocab_mask.all())
