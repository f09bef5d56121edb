"""Oracle fixtures from HuggingFace's ReformerModelWithLMHead (run on an Intel
Xeon VM with transformers 5.17 and PyTorch 2.11). For each tiny case it writes the model directory
(config.json + model.safetensors) and fixture.safetensors holding the input ids, the LSH
rotations HF drew (captured from torch.randn), the logits, the loss and every parameter's
gradient from loss.backward(). Usage: python3 make_fixtures.py OUTDIR [padded|heads] (padded: only
the evaluation cases whose length the chunks do not divide; heads: only the masked-LM and
sequence-classification cases)"""
import inspect, json, os, sys

import torch
from safetensors.torch import save_file
from transformers import (ReformerConfig, ReformerForMaskedLM, ReformerForSequenceClassification,
                          ReformerModelWithLMHead)

BASE = dict(vocab_size=20, hidden_size=16, feed_forward_size=24, num_attention_heads=2,
            attention_head_size=8, axial_pos_embds=True, axial_pos_shape=[4, 8],
            axial_pos_embds_dim=[4, 12], max_position_embeddings=32, is_decoder=True,
            hidden_dropout_prob=0.0, lsh_attention_probs_dropout_prob=0.0,
            local_attention_probs_dropout_prob=0.0, chunk_size_feed_forward=0,
            tie_word_embeddings=False, hash_seed=3, pad_token_id=0, eos_token_id=2)
CASES = {
    "lsh_local_gelu": dict(attn_layers=["lsh", "local"], num_hashes=2, num_buckets=4,
                           lsh_attn_chunk_length=8, lsh_num_chunks_before=1, lsh_num_chunks_after=0,
                           local_attn_chunk_length=8, local_num_chunks_before=1,
                           local_num_chunks_after=0, hidden_act="gelu"),
    "mixed_factorised_relu": dict(attn_layers=["local", "lsh", "lsh"], num_hashes=4, num_buckets=[2, 4],
                                  lsh_attn_chunk_length=8, lsh_num_chunks_before=1,
                                  lsh_num_chunks_after=0, local_attn_chunk_length=16,
                                  local_num_chunks_before=1, local_num_chunks_after=0,
                                  hidden_act="relu"),
    "lsh_one_hash_two_back": dict(attn_layers=["lsh"], num_hashes=1, num_buckets=8,
                                  lsh_attn_chunk_length=4, lsh_num_chunks_before=2,
                                  lsh_num_chunks_after=0, local_attn_chunk_length=8,
                                  hidden_act="gelu"),
    "local_only": dict(attn_layers=["local", "local"], num_hashes=1, num_buckets=4,
                       lsh_attn_chunk_length=8, local_attn_chunk_length=8, local_num_chunks_before=1,
                       local_num_chunks_after=0, hidden_act="gelu"),
    "lsh_two_hashes": dict(attn_layers=["lsh"], num_hashes=2, num_buckets=4, lsh_attn_chunk_length=8,
                           lsh_num_chunks_before=1, lsh_num_chunks_after=0, local_attn_chunk_length=8,
                           hidden_act="gelu"),
}

out = sys.argv[1]
only_padded = sys.argv[2:] == ["padded"]
only_heads = sys.argv[2:] == ["heads"]
skip_lm = only_padded or only_heads
captured = []
_randn = torch.randn
def recording_randn(*a, **k):
    t = _randn(*a, **k)
    if t.dim() == 4:
        captured.append(t.detach().clone())
    return t
torch.randn = recording_randn

def randomize(model, biases=True):
    """Larger weights than HF's 0.02 so attention is far from uniform; LayerNorm (and bias)
    values moved off their defaults so their gradients are exercised."""
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.dim() >= 2 and "position_embeddings" not in n:
                p.normal_(0.0, 0.3)
            elif "layer_norm" in n or (biases and n.endswith("bias")):
                p.add_(0.1 * _randn(p.shape))

def gradient_case(name, cfg, model, hf_loss, labels=None):
    """Writes the model directory and fixture.safetensors: input ids, HF's rotations, logits,
    the next-token loss (HF's own with labels=input_ids when hf_loss, else computed here from
    the logits, for heads without a shifted loss) and every parameter's gradient."""
    randomize(model)
    model.train()
    d = os.path.join(out, name)
    model.save_pretrained(d)
    ids = torch.randint(0, cfg.vocab_size, (2, 32))
    if labels is None:
        labels = ids
    captured.clear()
    res = model(ids, labels=labels) if hf_loss else model(ids)
    V = cfg.vocab_size
    loss = res.loss if hf_loss else torch.nn.functional.cross_entropy(res.logits[:, :-1].reshape(-1, V),
                                                                      ids[:, 1:].reshape(-1))
    loss.backward()
    n_lsh = sum(1 for a in cfg.attn_layers if a == "lsh")
    t = {"input_ids": ids.to(torch.int64).contiguous(), "logits": res.logits.detach().contiguous(),
         "loss": loss.detach().reshape(1).contiguous(), "labels": labels.to(torch.int64).clone().contiguous()}
    for i in range(n_lsh):
        t["rotations.%d" % i] = captured[i].clone().contiguous()
    no_grad = []
    for n, p in model.named_parameters():
        if p.grad is None:  # a parameter the loss does not reach
            no_grad.append(n)
        t["grad." + n] = (p.grad if p.grad is not None else torch.zeros_like(p)).detach().contiguous()
    save_file(t, os.path.join(d, "fixture.safetensors"))
    print(json.dumps({"case": name, "loss": float(loss), "rotations": [list(c.shape) for c in captured[:n_lsh]],
                      "no_grad": no_grad, "is_decoder": cfg.is_decoder}), flush=True)

for name, kw in ({} if skip_lm else CASES).items():
    torch.manual_seed(1)
    cfg = ReformerConfig(**BASE, **kw)
    gradient_case(name, cfg, ReformerModelWithLMHead(cfg), hf_loss=True)

# ---- cached greedy decoding: HF's past_buckets_states path, step by step ----
DECODE_CASES = {
    # prompt 8 > LSH chunk 4: the prompt pass is chunked LSH and caches every bucket
    "decode_local_lsh": (dict(attn_layers=["local", "lsh"], num_hashes=2, num_buckets=4, lsh_attn_chunk_length=4,
                              lsh_num_chunks_before=1, lsh_num_chunks_after=0, local_attn_chunk_length=8,
                              local_num_chunks_before=1, local_num_chunks_after=0, hidden_act="gelu"), 8, 20),
    # prompt 3 < chunk 8: plain attention and no buckets until the length reaches 8
    "decode_short_prompt": (dict(attn_layers=["lsh", "lsh"], num_hashes=4, num_buckets=[2, 4],
                                 lsh_attn_chunk_length=8, lsh_num_chunks_before=1, lsh_num_chunks_after=0,
                                 local_attn_chunk_length=8, hidden_act="relu"), 3, 24),
}

cache_kw = "past_buckets_states" if "past_buckets_states" in inspect.signature(ReformerModelWithLMHead.forward).parameters else "past_key_values"

def cache_of(res):
    return getattr(res, "past_buckets_states", None) or getattr(res, "past_key_values", None)

def eval_model(name, kw, seed):
    """A ReformerModelWithLMHead of BASE and kw in eval mode, randomized and saved as OUT/name."""
    torch.manual_seed(seed)
    cfg = ReformerConfig(**BASE, **kw)
    model = ReformerModelWithLMHead(cfg)
    randomize(model, biases=False)
    model.eval()
    d = os.path.join(out, name)
    model.save_pretrained(d)
    return cfg, model, d

for name, (kw, prompt_len, steps) in ({} if skip_lm else DECODE_CASES).items():
    cfg, model, d = eval_model(name, kw, 2)
    prompt = torch.randint(0, cfg.vocab_size, (1, prompt_len))
    captured.clear()
    with torch.no_grad():
        res = model(input_ids=prompt, use_cache=True)
        logits, ids = [res.logits[0, -1].clone()], []
        past = cache_of(res)
        for i in range(steps):
            nxt = int(torch.argmax(logits[-1]))
            ids.append(nxt)
            res = model(input_ids=torch.tensor([[nxt]]), use_cache=True, **{cache_kw: past})
            past = cache_of(res)
            logits.append(res.logits[0, -1].clone())
    assert captured and all(torch.equal(c, captured[0]) for c in captured), "hash_seed should fix the rotations"
    n_lsh = sum(1 for a in cfg.attn_layers if a == "lsh")
    t = {"prompt": prompt.to(torch.int64).contiguous(), "generated": torch.tensor(ids, dtype=torch.int64),
         "logits": torch.stack(logits).contiguous()}
    for i in range(n_lsh):
        t["rotations.%d" % i] = captured[0].clone().contiguous()
    save_file(t, os.path.join(d, "fixture.safetensors"))
    print(json.dumps({"case": name, "generated": ids, "hash_calls": len(captured)}), flush=True)

# ---- bidirectional models (is_decoder False, chunks after 1): ReformerForMaskedLM has the same
# weights and head; the loss is ours (next-token, shifted), computed here from its logits ----
BIDIR_CASES = {
    "bidir_lsh_local_after": dict(attn_layers=["lsh", "local"], num_hashes=2, num_buckets=4, lsh_attn_chunk_length=8,
                                  lsh_num_chunks_before=1, lsh_num_chunks_after=1, local_attn_chunk_length=8,
                                  local_num_chunks_before=1, local_num_chunks_after=1, hidden_act="gelu"),
    "bidir_lsh_four_hashes": dict(attn_layers=["lsh"], num_hashes=4, num_buckets=[2, 4], lsh_attn_chunk_length=4,
                                  lsh_num_chunks_before=1, lsh_num_chunks_after=1, local_attn_chunk_length=8,
                                  hidden_act="relu"),
}
for name, kw in ({} if skip_lm else BIDIR_CASES).items():
    torch.manual_seed(3)
    cfg = ReformerConfig(**{**BASE, "is_decoder": False}, **kw)
    gradient_case(name, cfg, ReformerForMaskedLM(cfg), hf_loss=False)

# ---- evaluation of a length the chunks do not divide: HF pads it at the end to a multiple of
# the chunk lengths' least common multiple, gives the padding an LSH bucket of its own and cuts
# the logits back; the loss is HF's with labels=input_ids ----
PADDED_CASES = {
    # 27 tokens, chunks 8 (LSH) and 16 (local): padded to 32
    "padded_lsh_local": (dict(attn_layers=["lsh", "local"], num_hashes=2, num_buckets=4, lsh_attn_chunk_length=8,
                              lsh_num_chunks_before=1, lsh_num_chunks_after=0, local_attn_chunk_length=16,
                              local_num_chunks_before=1, local_num_chunks_after=0, hidden_act="gelu"), 27),
    # 16 tokens, LSH chunk 4 and local chunk 32 (which covers it): HF still pads, to 32
    "padded_lsh_factorised": (dict(attn_layers=["local", "lsh"], num_hashes=4, num_buckets=[2, 4],
                                   lsh_attn_chunk_length=4, lsh_num_chunks_before=1, lsh_num_chunks_after=0,
                                   local_attn_chunk_length=32, local_num_chunks_before=1, local_num_chunks_after=0,
                                   hidden_act="relu"), 16),
}
for name, (kw, length) in ({} if only_heads else PADDED_CASES).items():
    cfg, model, d = eval_model(name, kw, 4)
    ids = torch.randint(1, cfg.vocab_size, (1, length))
    captured.clear()
    with torch.no_grad():
        res = model(ids, labels=ids)
    n_lsh = sum(1 for a in cfg.attn_layers if a == "lsh")
    t = {"input_ids": ids.to(torch.int64).contiguous(), "logits": res.logits.contiguous(),
         "loss": res.loss.reshape(1).contiguous()}
    for i in range(n_lsh):
        t["rotations.%d" % i] = captured[i].clone().contiguous()
    save_file(t, os.path.join(d, "fixture.safetensors"))
    print(json.dumps({"case": name, "length": length, "logits": list(res.logits.shape), "loss": float(res.loss),
                      "rotations": [list(c.shape) for c in captured[:n_lsh]]}), flush=True)

# ---- the other heads, bidirectional (is_decoder False): ReformerForMaskedLM with HF's own
# unshifted loss (labels=input_ids), and ReformerForSequenceClassification (the first position's
# row, dense + tanh + out_proj) with a class per sequence; then each in evaluation at a length
# the chunks do not divide (HF pads it and masks the padding as keys) ----
HEAD_KW = dict(attn_layers=["lsh", "local"], num_hashes=2, num_buckets=4, lsh_attn_chunk_length=8,
               lsh_num_chunks_before=1, lsh_num_chunks_after=1, local_attn_chunk_length=8,
               local_num_chunks_before=1, local_num_chunks_after=1, hidden_act="gelu")
if not only_padded:
    torch.manual_seed(5)
    cfg = ReformerConfig(**{**BASE, "is_decoder": False}, **HEAD_KW)
    gradient_case("mlm_lsh_local", cfg, ReformerForMaskedLM(cfg), hf_loss=True)
    torch.manual_seed(6)
    cfg = ReformerConfig(**{**BASE, "is_decoder": False, "num_labels": 5}, **HEAD_KW)
    gradient_case("class_lsh_local", cfg, ReformerForSequenceClassification(cfg), hf_loss=True,
                  labels=torch.tensor([1, 3]))
    for name, make, length in (("padded_mlm", ReformerForMaskedLM, 27),
                               ("padded_class", ReformerForSequenceClassification, 21)):
        torch.manual_seed(7)
        cfg = ReformerConfig(**{**BASE, "is_decoder": False, "num_labels": 5}, **HEAD_KW)
        model = make(cfg)
        randomize(model, biases=False)
        model.eval()
        d = os.path.join(out, name)
        model.save_pretrained(d)
        ids = torch.randint(1, cfg.vocab_size, (1, length))
        labels = ids if make is ReformerForMaskedLM else torch.tensor([4])
        captured.clear()
        with torch.no_grad():
            res = model(ids, labels=labels)
        n_lsh = sum(1 for a in cfg.attn_layers if a == "lsh")
        t = {"input_ids": ids.to(torch.int64).contiguous(), "logits": res.logits.contiguous(),
             "loss": res.loss.reshape(1).contiguous(), "labels": labels.to(torch.int64).clone().contiguous()}
        for i in range(n_lsh):
            t["rotations.%d" % i] = captured[i].clone().contiguous()
        save_file(t, os.path.join(d, "fixture.safetensors"))
        print(json.dumps({"case": name, "length": length, "logits": list(res.logits.shape), "loss": float(res.loss),
                          "rotations": [list(c.shape) for c in captured[:n_lsh]]}), flush=True)
