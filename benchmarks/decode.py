"""Decoding ISIC-sized images, and reading a decoded split back from the artifact store.

    python benchmarks/decode.py [--sizes 128 224] [--repeat 3]

Real ISIC 2017 images range from about 540 x 722 to 4499 x 6748 pixels. For one JPEG of
each size class (smooth synthetic content, quality 90, with its PNG mask), prints the
time to open, decode (libjpeg's reduced-scale draft) and resize it to each profile size,
then the time to decode a small split of such images once and to read it back from the
store (:func:`segqual_lite.data.decode_split`). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

SIZE_CLASSES = [(722, 540), (1024, 768), (3008, 2000), (4288, 2848), (6748, 4499)]  # (w, h)


def write_pair(folder: Path, mask_folder: Path, image_id: str, width: int, height: int, seed: int):
    rng = np.random.default_rng(seed)
    small = rng.integers(60, 200, (height // 32 + 1, width // 32 + 1, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
    image = image.filter(ImageFilter.GaussianBlur(2))
    image.save(folder / f"{image_id}.jpg", quality=90)
    yy, xx = np.mgrid[:height, :width]
    lesion = ((yy - height / 2) / (height / 3)) ** 2 + ((xx - width / 2) / (width / 3)) ** 2 < 1
    Image.fromarray((lesion * 255).astype(np.uint8)).save(
        mask_folder / f"{image_id}_segmentation.png"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 224])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "isic"
        os.environ["SEGQUAL_HOME"] = str(Path(tmp) / "home")
        from segqual_lite.data import decode_split, split_folders
        from segqual_lite.data.isic import _read_pair

        image_dir, mask_dir = split_folders(root, "test")
        image_dir.mkdir(parents=True)
        mask_dir.mkdir(parents=True)
        for k, (w, h) in enumerate(SIZE_CLASSES):
            write_pair(image_dir, mask_dir, f"ISIC_{k:07d}", w, h, k)
        print("per image: open, decode and resize (median of", args.repeat, "runs)")
        print(f"{'image size':>12s} " + " ".join(f"{f'to {s} px':>10s}" for s in args.sizes))
        for k, (w, h) in enumerate(SIZE_CLASSES):
            cells = []
            for size in args.sizes:
                times = []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    image, mask, _ = _read_pair(
                        image_dir / f"ISIC_{k:07d}.jpg",
                        mask_dir / f"ISIC_{k:07d}_segmentation.png",
                        size,
                    )
                    image.resize((size, size), Image.Resampling.BILINEAR)
                    mask.resize((size, size), Image.Resampling.NEAREST)
                    times.append(time.perf_counter() - start)
                cells.append(f"{statistics.median(times) * 1000:8.0f} ms")
            print(f"{f'{w} x {h}':>12s} " + " ".join(cells))
        for size in args.sizes:
            start = time.perf_counter()
            decode_split(root, "test", size)
            first = time.perf_counter() - start
            start = time.perf_counter()
            decode_split(root, "test", size)
            again = time.perf_counter() - start
            n = len(SIZE_CLASSES)
            print(
                f"split of {n} such images at {size} px: decoded in {first:.2f} s, "
                f"read from the store in {again * 1000:.1f} ms"
            )


if __name__ == "__main__":
    main()
