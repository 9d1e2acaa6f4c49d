"""Regenerate kgraph_cli/datasets/digits.npz from a scikit-learn wheel.

Usage: python tools/make_digits.py SCIKIT_LEARN_WHEEL [OUT.npz]

The wheel is only read as a zip (scikit-learn is not installed or imported). It holds
sklearn/datasets/data/digits.csv.gz: 1797 rows of 64 pixel values (0..16) then the label.
The .npz is what np.savez_compressed writes (deflated .npy members ``x`` and ``y``), but
with a fixed member timestamp so the same wheel gives a byte-identical file.
"""

import gzip
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

CSV = "sklearn/datasets/data/digits.csv.gz"
OUT = Path(__file__).resolve().parent.parent / "kgraph_cli" / "datasets" / "digits.npz"


def main(wheel: str, out: Path = OUT) -> None:
    with zipfile.ZipFile(wheel) as whl:
        text = gzip.decompress(whl.read(CSV)).decode("ascii")
    rows = np.loadtxt(io.StringIO(text), delimiter=",")
    assert rows.shape == (1797, 65) and (rows == rows.round()).all(), rows.shape
    assert rows.min() >= 0 and rows[:, :64].max() <= 16 and rows[:, 64].max() <= 9
    arrays = {
        "x": rows[:, :64].astype(np.uint8).reshape(-1, 8, 8),
        "y": rows[:, 64].astype(np.uint8),
    }
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as npz:
        for key, arr in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with npz.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, arr, allow_pickle=False)
    with np.load(out) as saved:
        assert all(np.array_equal(saved[k], v) for k, v in arrays.items())
        assert all(saved[k].dtype == np.uint8 for k in arrays)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"{out}: {out.stat().st_size} bytes, sha256 {digest}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(sys.argv[1], *(Path(p) for p in sys.argv[2:]))
