"""Does transformers load a directory written by `reformer export`, and compute the loss we
compute? Run where transformers is installed: python3 check_export.py DIR FILE ROTATIONS_OUT [TOKEN_OFFSET].
Prints the loss HF computes with labels = input_ids (FILE's bytes + offset) as loaded, and with
lm_head.bias added to the logits (transformers 5.x no longer adds it; older versions did), and
saves the LSH rotations it drew so `reformer eval --rotations` can use the same ones."""
import json, sys

import torch
from safetensors.torch import save_file
from transformers import ReformerModelWithLMHead

d, data, rot_out = sys.argv[1:4]
offset = int(sys.argv[4]) if len(sys.argv) > 4 else 0
model, info = ReformerModelWithLMHead.from_pretrained(d, output_loading_info=True)
model.eval()
ids = torch.tensor([[b + offset for b in open(data, "rb").read()]])
captured = []
_randn = torch.randn
def recording_randn(*a, **k):
    t = _randn(*a, **k)
    if t.dim() == 4:
        captured.append(t.clone())
    return t
torch.randn = recording_randn
with torch.no_grad():
    res = model(ids, labels=ids)
    logits = res.logits + model.state_dict()["lm_head.bias"]
    with_bias = torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:])
save_file({"rotations.%d" % i: c.contiguous() for i, c in enumerate(captured)}, rot_out)
print(json.dumps({"missing": sorted(info["missing_keys"]), "unexpected": sorted(info["unexpected_keys"]),
                  "loss_as_loaded": float(res.loss), "loss_with_lm_head_bias": float(with_bias),
                  "rotations": [list(c.shape) for c in captured]}))
