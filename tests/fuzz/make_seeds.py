# Seed corpora for the fuzz harnesses (tests/fuzz/corpus/<harness>/), from the repository's
# own configs and fixtures plus small archives made here with Python's standard library.
# Usage: python3 tests/fuzz/make_seeds.py ./reformer   (the binary writes the checkpoint seed)
import glob, gzip, io, os, shutil, struct, subprocess, sys, tarfile, tempfile, zipfile, zlib

root = os.path.join(os.path.dirname(__file__), "..", "..")
out = os.path.join(os.path.dirname(__file__), "corpus")
binary = sys.argv[1]


def put(harness, name, data):
    os.makedirs(os.path.join(out, harness), exist_ok=True)
    with open(os.path.join(out, harness, name), "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


TINY = ('{"model": {"vocab": 8, "d_model": 8, "d_ff": 8, "n_heads": 1, "d_head": 4, "attn_layers": ["local", "lsh"],'
        ' "n_hashes": 2, "n_buckets": 4, "lsh_chunk": 4, "local_chunk": 4, "axial_shape": [2, 4], "axial_dims": [4, 4]},'
        ' "data": {"kind": "copy", "seq_len": 8}, "train": {"batch": 1, "steps": 1, "eval_every": 0, "log_every": 1}}')

# configs: ours, and HuggingFace's
for path in sorted(glob.glob(os.path.join(root, "configs", "*.json"))):
    put("config", os.path.basename(path), read(path))
put("config", "tiny.json", TINY.encode())
for path in sorted(glob.glob(os.path.join(root, "tests", "hf", "fixtures", "*", "config.json"))):
    put("hf_config", os.path.basename(os.path.dirname(path)) + ".json", read(path))
    put("hf_config", "reformer.json", b'{"token_offset": 2}\n')
# safetensors: the smallest fixtures
for name in ["lsh_two_hashes", "decode_short_prompt"]:
    put("safetensors", name + ".safetensors", read(os.path.join(root, "tests", "hf", "fixtures", name, "model.safetensors")))

# a checkpoint of a tiny model, with and without optimizer state
with tempfile.TemporaryDirectory() as tmp:
    with open(os.path.join(tmp, "tiny.json"), "w") as f:
        f.write(TINY)
    subprocess.run([binary, "train", os.path.join(tmp, "tiny.json"), "--out", os.path.join(tmp, "run"), "--threads", "1"],
                   check=True, capture_output=True)
    put("checkpoint", "tiny.ckpt", read(os.path.join(tmp, "run", "last.ckpt")))

# enwik8-like text: raw, gzip (one and two members), zip (deflated and stored)
text = read(os.path.join(root, "README.md"))[:3000]
put("archive", "raw", text)
put("archive", "one.gz", gzip.compress(text))
put("archive", "two.gz", gzip.compress(text[:1000]) + gzip.compress(text[1000:]))
for method, name in [(zipfile.ZIP_DEFLATED, "deflated.zip"), (zipfile.ZIP_STORED, "stored.zip")]:
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", compression=method) as z:
        z.writestr("enwik8", text)
    put("archive", name, b.getvalue())


# images: numpy's own archives, and a tar of PNG files with every row filter
for path in sorted(glob.glob(os.path.join(root, "tests", "data", "numpy", "*.npz")) +
                   glob.glob(os.path.join(root, "tests", "data", "numpy", "*.zip"))):
    put("imagenet", os.path.basename(path), read(path))
    with zipfile.ZipFile(path) as z:
        for member in z.namelist():
            if member.endswith(".npy"):
                put("npy", os.path.basename(path) + "." + member, z.read(member)[:512])


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(seed, color=2):
    channels = 3 if color == 2 else 1
    rows = b""
    for y in range(64):
        rows += bytes([y % 5]) + bytes((x * 7 + y * 3 + seed) % 256 for x in range(64 * channels))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, color, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


put("png", "rgb.png", png(1))
put("png", "grey.png", png(2, color=0))
b = io.BytesIO()
with tarfile.open(fileobj=b, mode="w", format=tarfile.GNU_FORMAT) as t:
    for i, data in enumerate([png(3), png(4, color=0)]):
        info = tarfile.TarInfo(("a-long-directory-name/" * 6) + "img%d.png" % i)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
put("tar", "pngs.tar", b.getvalue())
put("imagenet", "pngs.tar", b.getvalue())
