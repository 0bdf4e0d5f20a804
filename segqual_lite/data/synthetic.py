"""Procedural dermoscopy-like lesions written in the ISIC 2017 layout (chapter 01).

Real ISIC 2017 data cannot be downloaded at build time, so the book's ``tiny`` profile
and the tests use lesions drawn here: a textured skin-toned background, an irregular
lesion with colour variegation and a soft border, hair strokes and vignetting. A
controlled share of images are *hard cases*, so that a segmentation network fails on
some of them and a quality predictor has both good and bad segmentations to learn from:

* ``low_contrast``: the lesion's colour is close to the skin's;
* ``multi_blob``: two or three separate lesions;
* ``border_cut``: the lesion is cut by the image border;
* ``lazy_mask``: the ground truth is a coarse polygon around the lesion (the paper blames
  such annotations for most false positives in its Figure 3).

Every image depends only on (seed, split, index), so the output is byte-identical for
the same arguments.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..store import claim_folder, write_bytes
from .layout import SPLIT_PREFIX, SPLITS, folder_dirs

__all__ = [
    "make_synthetic_folder",
    "HARD_CASES",
    "DEFAULT_HARD_CASE_SHARES",
    "make_synthetic_isic",
    "draw_lesion",
    "read_hard_cases",
    "lesion_name",
]


def lesion_name(image_id: str, synthetic: bool) -> str:
    """What a page calls a lesion: its id, or for a synthetic lesion (whose file is named
    in the ISIC layout, ``ISIC_0200012``) "synthetic lesion 0200012", so that no reader
    takes it for an ISIC image."""
    return f"synthetic lesion {image_id.removeprefix('ISIC_')}" if synthetic else image_id


_IMAGE_CASES = ("low_contrast", "multi_blob", "border_cut", "lazy_mask")
# ambiguous_rim: a faint rim of pigment around the lesion that the annotator included
# in the mask for a random half of the images: the lesion's extent is genuinely
# ambiguous, so a mask that looks right can score low while f is unsure over the rim.
HARD_CASES = (*_IMAGE_CASES, "ambiguous_rim")
DEFAULT_HARD_CASE_SHARES = {
    "low_contrast": 0.2,
    "multi_blob": 0.15,
    "border_cut": 0.15,
    "lazy_mask": 0.03,
    "ambiguous_rim": 0.3,
}
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
_ID_OFFSET = {"train": 0, "val": 100_000, "test": 200_000}


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a coarse random grid upsampled bicubically."""
    grid = rng.uniform(-1.0, 1.0, size=(cells, cells)).astype(np.float32)
    up = Image.fromarray(grid, mode="F").resize((w, h), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(up), -1.0, 1.0)


def _blob(rng, h, w, cx, cy, r0):
    """Signed radial distance (negative inside) of an irregular star-shaped blob."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = xx - cx, yy - cy
    theta = np.arctan2(dy, dx)
    radius = np.full_like(theta, r0)
    for k in range(2, 7):
        radius += (
            r0 * rng.uniform(0.0, 0.16 / k**0.5) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
        )
    return (np.hypot(dx, dy) - radius) / r0


# How far a blob of radius r0 can reach: r0 plus its largest harmonics (see _blob).
_BLOB_REACH = 1.0 + sum(0.16 / k**0.5 for k in range(2, 7))


def _apart(main: tuple, cx: float, cy: float, r0: float, h: int, w: int) -> tuple:
    """A satellite's centre moved, if needed, to where it cannot touch the main lesion.

    ``main`` is the main lesion's ``(cx, cy, r0)``. A centre far enough already is kept;
    otherwise it moves along the ray from the main centre (or, where that leaves the
    image, towards the farthest corner) to the nearest distance at which the two blobs
    keep a gap. No random number is drawn, so every other image stays as it was. Where
    the image has no room, the two lesions touch.
    """
    mx, my, mr = main
    need = _BLOB_REACH * (mr + r0) + 0.15 * mr
    dx, dy = cx - mx, cy - my
    if np.hypot(dx, dy) >= need:
        return cx, cy
    corners = sorted(
        ((0, 0), (w, 0), (0, h), (w, h)), key=lambda c: -np.hypot(c[0] - mx, c[1] - my)
    )
    margin = r0 * 1.1
    for ux, uy in [(dx, dy), *((x - mx, y - my) for x, y in corners)]:
        norm = np.hypot(ux, uy)
        if norm == 0:
            continue
        px, py = mx + ux / norm * need, my + uy / norm * need
        if margin <= px <= w - margin and margin <= py <= h - margin:
            return px, py
    return cx, cy


def _lazy_polygon(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A coarse annotation: a 5-8 vertex polygon loosely around the true lesion."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return mask
    cy, cx = ys.mean(), xs.mean()
    radius = np.sqrt(((ys - cy) ** 2 + (xs - cx) ** 2).max()) + 1
    n = int(rng.integers(5, 9))
    # Roughly even angles, so the polygon wraps the lesion instead of slicing it.
    start = rng.uniform(0, 2 * np.pi)
    angles = start + (np.arange(n) + rng.uniform(-0.3, 0.3, n)) * (2 * np.pi / n)
    scale = rng.uniform(1.0, 1.35, n)
    points = [
        (float(cx + radius * s * np.cos(a)), float(cy + radius * s * np.sin(a)))
        for a, s in zip(angles, scale, strict=True)
    ]
    canvas = Image.new("L", (w, h), 0)
    ImageDraw.Draw(canvas).polygon(points, fill=255)
    return np.asarray(canvas) > 0


def draw_lesion(
    rng: np.random.Generator,
    height: int,
    width: int,
    cases: frozenset[str] = frozenset(),
    rim_rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one dermoscopy-like image and its ground-truth mask.

    Returns ``(image uint8 [H, W, 3], mask bool [H, W])``. ``cases`` is a subset of
    :data:`HARD_CASES`. The ambiguous rim draws from ``rim_rng`` (``rng`` when None), so
    that images without it do not depend on whether the case exists.
    """
    h, w = height, width
    s = min(h, w)
    # Skin: a tone from pale to brown, with blotches and fine grain.
    skin = np.array([rng.uniform(185, 235), rng.uniform(130, 180), rng.uniform(105, 150)])
    blotch = _smooth_noise(rng, h, w, 5)[..., None]
    grain = rng.normal(0, 1, (h, w, 1)).astype(np.float32)
    image = skin + 14 * blotch + 5 * grain * np.array([1.0, 0.9, 0.8])

    # Lesion(s): where they sit, how big, how many, how visible. Satellites of a
    # multi-blob lesion are smaller and fainter than the main one.
    n_blobs = int(rng.integers(2, 4)) if "multi_blob" in cases else 1
    low = "low_contrast" in cases
    inside = np.full((h, w), np.inf, dtype=np.float32)
    distances, contrasts = [], []
    centre = None  # the main lesion's (cx, cy, r0), drawn first
    for b in range(n_blobs):
        r0 = s * (rng.uniform(0.18, 0.33) if b == 0 else rng.uniform(0.07, 0.14))
        if "border_cut" in cases and b == 0:
            # Centre the first lesion on or just inside one of the four edges.
            edge, along = rng.uniform(-0.05, 0.1), rng.uniform(0.3, 0.7)
            corners = [(edge, along), (1 - edge, along), (along, edge), (along, 1 - edge)]
            fx, fy = corners[int(rng.integers(4))]
            cx, cy = fx * w, fy * h
            r0 *= 1.3
        else:
            margin = r0 * 1.1
            cx = rng.uniform(margin, max(margin + 1, w - margin))
            cy = rng.uniform(margin, max(margin + 1, h - margin))
            if b > 0:  # "two or three separate lesions"
                cx, cy = _apart(centre, cx, cy, r0, h, w)
        d = _blob(rng, h, w, cx, cy, r0)
        if b == 0:
            centre = (cx, cy, r0)
        distances.append(d)
        contrasts.append(rng.uniform(0.1, 0.25) if low else rng.uniform(0.75, 1.0))
        if b > 0:
            contrasts[-1] *= rng.uniform(0.3, 0.6)
        inside = np.minimum(inside, d)
    mask = inside < 0

    # Colour: dark brown to reddish, variegated, darker towards the centre.
    red = rng.uniform(85, 150)
    green = red * rng.uniform(0.42, 0.62)
    base = np.array([red, green, green * rng.uniform(0.6, 0.9)])
    second = base * rng.uniform(0.45, 0.8)
    mix = (_smooth_noise(rng, h, w, 7)[..., None] + 1) / 2
    lesion = base * (1 - mix) + second * mix
    lesion = lesion * (1 + 0.25 * np.clip(inside, -1, 0)[..., None])
    softness = rng.uniform(0.04, 0.12)
    alpha = np.zeros((h, w), dtype=np.float32)
    for d, contrast in zip(distances, contrasts, strict=True):
        alpha = np.maximum(alpha, contrast / (1 + np.exp(np.clip(d / softness, -50, 50))))
    if "ambiguous_rim" in cases:
        rim = rim_rng or rng
        cx, cy, r0 = centre
        d_rim = _blob(rim, h, w, cx, cy, r0 * rim.uniform(1.35, 1.7))
        rim_alpha = rim.uniform(0.25, 0.45) / (1 + np.exp(np.clip(d_rim / 0.15, -50, 50)))
        alpha = np.maximum(alpha, rim_alpha)
        if rim.uniform() < 0.5:  # this annotator drew the rim as part of the lesion
            mask = mask | (d_rim < 0)
    image = image * (1 - alpha[..., None]) + lesion * alpha[..., None]

    # Vignetting: the dark corners of a dermatoscope; strong ones beside a lesion cut by
    # the border, where a dark rim and a dark lesion are easily confused.
    yy, xx = np.mgrid[0:h, 0:w]
    rr = np.hypot((xx - w / 2) / (w / 2), (yy - h / 2) / (h / 2))
    strength, start = (
        (rng.uniform(0.5, 0.85), 0.45) if "border_cut" in cases else (rng.uniform(0.1, 0.45), 0.6)
    )
    image *= (1 - strength * np.clip(rr - start, 0, None) ** 2)[..., None]

    canvas = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    # Hair: thin dark curves across the image.
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.poisson(2.0))):
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        angle, length = rng.uniform(0, 2 * np.pi), rng.uniform(0.4, 1.0) * s
        bend = rng.uniform(-0.4, 0.4)
        t = np.linspace(0, 1, 12)
        xs = x0 + length * t * np.cos(angle + bend * t)
        ys = y0 + length * t * np.sin(angle + bend * t)
        shade = int(rng.uniform(20, 70))
        draw.line(
            list(zip(xs.tolist(), ys.tolist(), strict=True)),
            fill=(shade, shade // 2 + 10, shade // 3 + 5),
            width=max(1, round(s / 160)),
        )
    canvas = canvas.filter(ImageFilter.GaussianBlur(radius=0.35))

    if "lazy_mask" in cases:
        mask = _lazy_polygon(mask, rng)
    return np.array(canvas), mask


def _encode(im: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


# what earlier versions wrote at the root of a synthetic folder (no marker then)
_LEGACY = (".complete.json", "SYNTHETIC_CASES.csv")


def make_synthetic_isic(
    root: str | os.PathLike,
    n_train: int = 300,
    n_val: int = 60,
    n_test: int = 150,
    size: int = 64,
    seed: int = 0,
    hard_cases: dict[str, float] | None = None,
) -> dict[str, int]:
    """Write synthetic lesions into ``root`` in the exact ISIC 2017 Part 1 layout.

    Images are ``size`` pixels high and 4/3 as wide (ISIC photographs are landscape, so
    the loader's resizing is exercised), saved as JPEG with 0/255 PNG masks, a
    ``*_superpixels.png`` placeholder and a metadata CSV per image folder, as in the
    official zips. ``hard_cases`` maps each name of :data:`HARD_CASES` to the share of
    images that get it (independently). A ``SYNTHETIC_CASES.csv`` at the root records
    each image's cases. ``root`` must be new, empty or written by the book before
    (:func:`~segqual_lite.store.claim_folder`). Returns the number of images per split.
    """
    shares = dict(DEFAULT_HARD_CASE_SHARES)
    if hard_cases:
        unknown = set(hard_cases) - set(HARD_CASES)
        if unknown:
            raise ValueError(f"unknown hard case(s) {sorted(unknown)}: choose from {HARD_CASES}")
        shares.update(hard_cases)
    for name, share in shares.items():
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"hard-case share {name}={share} must lie in [0, 1]")
    counts = {"train": n_train, "val": n_val, "test": n_test}
    for split, n in counts.items():
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"n_{split} must be a non-negative int, got {n!r}")
    if not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an int >= 16, got {size!r}")

    root = claim_folder(root, "synthetic lesions", legacy=_LEGACY)
    height, width = size, round(size * 4 / 3)
    records = []
    for split in SPLITS:
        prefix = SPLIT_PREFIX[split]
        image_dir = root / f"{prefix}_Data"
        mask_dir = root / f"{prefix}_Part1_GroundTruth"
        image_dir.mkdir(parents=True, exist_ok=True)
        mask_dir.mkdir(parents=True, exist_ok=True)
        meta = io.StringIO()
        writer = csv.writer(meta, lineterminator="\n")
        writer.writerow(["image_id", "age_approximate", "sex"])
        for i in range(counts[split]):
            rng = np.random.default_rng([seed, _SPLIT_CODE[split], i])
            cases = {c for c in _IMAGE_CASES if rng.uniform() < shares[c]}
            rim_rng = np.random.default_rng([seed, _SPLIT_CODE[split], i, 1])
            if rim_rng.uniform() < shares["ambiguous_rim"]:
                cases.add("ambiguous_rim")
            image, mask = draw_lesion(rng, height, width, frozenset(cases), rim_rng)
            iid = f"ISIC_{_ID_OFFSET[split] + i:07d}"
            write_bytes(
                image_dir / f"{iid}.jpg", _encode(Image.fromarray(image), "JPEG", quality=92)
            )
            write_bytes(
                mask_dir / f"{iid}_segmentation.png",
                _encode(Image.fromarray(mask.astype(np.uint8) * 255), "PNG"),
            )
            superpixels = Image.new("RGB", (width, height), (0, 0, 0))
            write_bytes(image_dir / f"{iid}_superpixels.png", _encode(superpixels, "PNG"))
            writer.writerow([iid, "unknown", "unknown"])
            records.append([split, iid, ";".join(sorted(cases))])
        write_bytes(image_dir / f"{prefix}_Data_metadata.csv", meta.getvalue().encode())
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["split", "image_id", "hard_cases"])
    writer.writerows(records)
    write_bytes(root / "SYNTHETIC_CASES.csv", table.getvalue().encode())
    return counts


def make_synthetic_folder(
    root: str | os.PathLike, n_train: int = 24, n_val: int = 8, n_test: int = 24, seed: int = 0
) -> dict[str, int]:
    """Write synthetic lesions as a folder of your own (``book/own_data.md``): ``root/<split>/
    images/lesion-<split>-<i>`` and ``masks/`` of the same name, in the mixed sizes and
    formats real folders come in: 48 to 96 px high, square or 4:3, RGB JPEG, RGB PNG and
    grey PNG images in turn, masks 0/1 or 0/255 (any non-zero pixel is foreground). For
    the worked example of that page and the tests. Returns the images per split."""
    root = claim_folder(root, "synthetic lesions", legacy=_LEGACY)
    counts = {"train": n_train, "val": n_val, "test": n_test}
    for split, n in counts.items():
        image_dir, mask_dir = folder_dirs(root, split)
        image_dir.mkdir(parents=True, exist_ok=True)
        mask_dir.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            rng = np.random.default_rng([seed, _SPLIT_CODE[split], i, 2])
            height = int(rng.choice([48, 64, 96]))
            width = height if rng.uniform() < 0.5 else round(height * 4 / 3)
            cases = frozenset(c for c in _IMAGE_CASES if rng.uniform() < 0.15)
            image, mask = draw_lesion(rng, height, width, cases)
            name = f"lesion-{split}-{i:03d}"
            kind = i % 3
            picture = Image.fromarray(image).convert("L") if kind == 2 else Image.fromarray(image)
            if kind == 0:
                write_bytes(image_dir / f"{name}.jpg", _encode(picture, "JPEG", quality=92))
            else:
                write_bytes(image_dir / f"{name}.png", _encode(picture, "PNG"))
            scale = 255 if i % 2 else 1
            write_bytes(
                mask_dir / f"{name}.png",
                _encode(Image.fromarray(mask.astype(np.uint8) * scale), "PNG"),
            )
    return counts


def read_hard_cases(root: str | os.PathLike) -> dict[str, frozenset[str]]:
    """Image id -> its hard cases, from ``SYNTHETIC_CASES.csv``; ``{}`` for real data."""
    path = Path(root) / "SYNTHETIC_CASES.csv"
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        return {
            row["image_id"]: frozenset(c for c in row["hard_cases"].split(";") if c)
            for row in csv.DictReader(f)
        }
