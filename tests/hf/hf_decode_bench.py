# HF's cached decoding speed on CPU: greedy tokens after a prompt, one forward per token with
# past_buckets_states, as ReformerModelWithLMHead generates. Usage: DIR N THREADS
import inspect, json, sys, time
import torch
from transformers import ReformerModelWithLMHead
d, n, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
model = ReformerModelWithLMHead.from_pretrained(d).eval()
kw = "past_buckets_states" if "past_buckets_states" in inspect.signature(model.forward).parameters else "past_key_values"
ids = torch.tensor([[ord(c) for c in "The "]])
with torch.no_grad():
    t0 = time.time()
    res = model(input_ids=ids, use_cache=True)
    past = getattr(res, "past_buckets_states", None) or getattr(res, "past_key_values", None)
    for i in range(n):
        nxt = torch.argmax(res.logits[0, -1]).view(1, 1)
        res = model(input_ids=nxt, use_cache=True, **{kw: past})
        past = getattr(res, "past_buckets_states", None) or getattr(res, "past_key_values", None)
    dt = time.time() - t0
print(json.dumps({"impl": "hf", "tokens": n, "seconds": round(dt, 2), "tokens_per_s": round(n / dt, 1)}))
