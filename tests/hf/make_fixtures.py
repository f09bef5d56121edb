"""Oracle fixtures from HuggingFace's ReformerModelWithLMHead (run on the device machine:
transformers 5.17, PyTorch 2.11). For each tiny case it writes the model directory
(config.json + model.safetensors) and fixture.safetensors holding the input ids, the LSH
rotations HF drew (captured from torch.randn), the logits, the loss and every parameter's
gradient from loss.backward(). Usage: python3 make_fixtures.py OUTDIR"""
import json, os, sys

import torch
from safetensors.torch import save_file
from transformers import ReformerConfig, ReformerModelWithLMHead

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
captured = []
_randn = torch.randn
def recording_randn(*a, **k):
    t = _randn(*a, **k)
    if t.dim() == 4:
        captured.append(t.detach().clone())
    return t
torch.randn = recording_randn

for name, kw in CASES.items():
    torch.manual_seed(1)
    cfg = ReformerConfig(**BASE, **kw)
    model = ReformerModelWithLMHead(cfg)
    with torch.no_grad():  # larger weights than HF's 0.02 so attention is far from uniform
        for n, p in model.named_parameters():
            if p.dim() >= 2 and "position_embeddings" not in n:
                p.normal_(0.0, 0.3)
            elif "layer_norm" in n or n.endswith("bias"):
                p.add_(0.1 * _randn(p.shape))
    model.train()
    d = os.path.join(out, name)
    model.save_pretrained(d)
    ids = torch.randint(0, cfg.vocab_size, (2, 32))
    captured.clear()
    res = model(ids, labels=ids)
    res.loss.backward()
    n_lsh = sum(1 for a in cfg.attn_layers if a == "lsh")
    t = {"input_ids": ids.to(torch.int64).contiguous(),
         "logits": res.logits.detach().contiguous(),
         "loss": res.loss.detach().reshape(1).contiguous()}
    for i in range(n_lsh):
        t["rotations.%d" % i] = captured[i].contiguous()
    no_grad = []
    for n, p in model.named_parameters():
        if p.grad is None:  # a parameter the loss does not reach
            no_grad.append(n)
        t["grad." + n] = (p.grad if p.grad is not None else torch.zeros_like(p)).detach().contiguous()
    save_file(t, os.path.join(d, "fixture.safetensors"))
    print(json.dumps({"case": name, "loss": float(res.loss), "rotations": [list(c.shape) for c in captured[:n_lsh]],
                      "no_grad": no_grad}), flush=True)
