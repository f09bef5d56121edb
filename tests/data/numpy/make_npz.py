# Real numpy output for the ImageNet reader's tests: np.savez (stored, ZIP64 local extras),
# np.savez_compressed (deflated), and a zip of .npz members as the published archives are.
import sys, zipfile
import numpy as np
out = sys.argv[1]
def images(n, s):
    return ((np.arange(n * 12288, dtype=np.int64).reshape(n, 12288) * 7 + s) % 251).astype(np.uint8)
np.savez(out + "/plain.npz", data=images(2, 1), labels=np.array([1, 2]))
np.savez_compressed(out + "/compressed.npz", labels=np.array([3, 4, 5]), data=images(3, 2), mean=np.zeros(12288))
with zipfile.ZipFile(out + "/outer.zip", "w", compression=zipfile.ZIP_DEFLATED) as z:
    z.write(out + "/plain.npz", "train_data_batch_1.npz")
    z.write(out + "/compressed.npz", "train_data_batch_2.npz")
print(np.__version__)
