"""Does transformers load the masked-LM and classifier directories `reformer export` wrote, and
compute what we compute? Run where transformers is installed:
  python3 check_export_heads.py DIR OUT
DIR holds config.json, model.safetensors and data.bin (one byte a token id, 64 of them). Loads DIR
with the class its config names (ReformerForMaskedLM: labels = input_ids, every position;
ReformerForSequenceClassification: class 3), in evaluation, and writes OUT/fixture.safetensors (the
LSH rotations it drew, its logits and loss) and prints what it loaded (missing and unexpected keys)."""
import json, os, sys

import torch
from safetensors.torch import save_file
from transformers import ReformerForMaskedLM, ReformerForSequenceClassification

d, out = sys.argv[1:3]
arch = json.load(open(os.path.join(d, "config.json")))["architectures"][0]
cls = {"ReformerForMaskedLM": ReformerForMaskedLM, "ReformerForSequenceClassification": ReformerForSequenceClassification}[arch]
model, info = cls.from_pretrained(d, output_loading_info=True)
model.eval()
ids = torch.tensor([list(open(os.path.join(d, "data.bin"), "rb").read())])
labels = ids if cls is ReformerForMaskedLM else torch.tensor([3])
captured = []
_randn = torch.randn
def recording_randn(*a, **k):
    t = _randn(*a, **k)
    if t.dim() == 4:
        captured.append(t.clone())
    return t
torch.randn = recording_randn
with torch.no_grad():
    res = model(ids, labels=labels)
t = {"rotations.%d" % i: c.contiguous() for i, c in enumerate(captured)}
t.update({"logits": res.logits.contiguous(), "loss": res.loss.reshape(1).contiguous(),
          "input_ids": ids.to(torch.int64).contiguous(), "labels": labels.to(torch.int64).clone().contiguous()})
os.makedirs(out, exist_ok=True)
save_file(t, os.path.join(out, "fixture.safetensors"))
print(json.dumps({"dir": d, "class": arch, "missing": sorted(info["missing_keys"]),
                  "unexpected": sorted(info["unexpected_keys"]), "loss": float(res.loss)}))
