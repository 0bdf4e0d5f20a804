"""Small dummies shared by the unit tests."""

import http.server
import threading

import torch

from segqual_lite.config import seed_everything
from segqual_lite.models import UNet
from segqual_lite.rows import get_method


def small_unet(method="max_prob", dropout=0.5):
    """A width-4, depth-3 U-Net with the head ``method`` trains, seeded."""
    seed_everything(0)
    return UNet(width=4, depth=3, dropout=dropout, head=get_method(method).head)


def trained_looking(net):
    """Give every BatchNorm statistics and affine parameters far from their initial
    (identity) values, so that folding them into the convolutions is not trivial."""
    g = torch.Generator().manual_seed(5)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) * 2 + 0.3)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
    return net


def batch(b=2, size=16):
    """A fixed batch of random images in [0, 1]."""
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(1))


def bn_state(model):
    """Copies of every BatchNorm running statistic of ``model``."""
    return {
        k: v.clone() for k, v in model.state_dict().items() if "running" in k or "num_batches" in k
    }


def prediction_records(method, seed, true, pred):
    """Per-image prediction rows (the columns of predictions.csv) for one row and seed."""
    return [
        {
            "method": method,
            "seed": seed,
            "image_id": f"ISIC_{i:07d}",
            "true_jaccard": float(t),
            "predicted_jaccard": float(p),
        }
        for i, (t, p) in enumerate(zip(true, pred, strict=True))
    ]


def load_book_build():
    """book/build.py as the module ``book_build``, registered in ``sys.modules`` so that
    its functions pickle into the processes the build starts."""
    import importlib.util
    import sys
    from pathlib import Path

    if "book_build" not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "book" / "build.py"
        spec = importlib.util.spec_from_file_location("book_build", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["book_build"] = module
        spec.loader.exec_module(module)
    return sys.modules["book_build"]


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``files`` (name -> bytes) with HTTP Range support and records each request
    in ``log``. ``cut_after[name] = n`` drops the connection after n bytes; ``hold[name]
    = (n, event)`` sends n bytes, then waits for the event (a download that stalls until
    its client is killed)."""

    files: dict[str, bytes] = {}
    log: list[tuple[str, str | None]] = []
    cut_after: dict[str, int] = {}
    hold: dict[str, tuple[int, threading.Event]] = {}

    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        rng = self.headers.get("Range")
        self.log.append((name, rng))
        if name not in self.files:
            self.send_error(404)
            return
        body = self.files[name]
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        if start >= len(body):
            self.send_error(416)
            return
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        limit = self.cut_after.pop(name, None)
        held = self.hold.pop(name, None)
        if held is not None:
            n, event = held
            self.wfile.write(body[start : start + n])
            self.wfile.flush()
            event.wait(timeout=120)  # the client is killed meanwhile: close without the rest
            return
        self.wfile.write(body[start : start + limit] if limit is not None else body[start:])

    def log_message(self, *args):
        pass


def serve(files: dict[str, bytes]):
    """Serve ``files`` with :class:`RangeHandler` on 127.0.0.1 in a thread; returns
    ``(base URL, server)``; call ``server.shutdown()`` when done."""
    RangeHandler.files, RangeHandler.log, RangeHandler.cut_after = files, [], {}
    RangeHandler.hold = {}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_port}/2017/", httpd


def folder_bytes(root):
    """Every file under ``root`` and its SHA-256: equal before and after a command that
    must leave the folder as it is (a folder of yours is never changed)."""
    import hashlib
    from pathlib import Path

    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(root).rglob("*"))
        if p.is_file()
    }


def make_fake_ph2(root, per_diagnosis=(4, 4, 2), size=(48, 36), table="||", mask_bits=24):
    """A PH2 folder in its authors' layout under ``root/PH2Dataset``: ``per_diagnosis``
    lesions of each clinical diagnosis (0, 1, 2), ``size`` (width, height) BMP images, a
    disc for each lesion's mask (24-bit RGB as distributed, or 8-bit grey as the shrunk
    copy), and PH2_dataset.txt ``||``-separated as distributed (or ``"\\t"``). Returns
    ``{name: diagnosis}``."""
    from pathlib import Path

    import numpy as np
    from PIL import Image, ImageDraw

    base = Path(root) / "PH2Dataset"
    rng = np.random.default_rng(0)
    diagnoses, number = {}, 2
    for diagnosis, n in enumerate(per_diagnosis):
        for _ in range(n):
            name = f"IMD{number:03d}"
            number += 3
            diagnoses[name] = diagnosis
            folder = base / "PH2 Dataset images" / name
            (folder / f"{name}_Dermoscopic_Image").mkdir(parents=True)
            (folder / f"{name}_lesion").mkdir()
            pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{name}_Dermoscopic_Image" / f"{name}.bmp")
            mask = Image.new("L", size, 0)
            ImageDraw.Draw(mask).ellipse(
                [size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2], 255
            )
            if mask_bits == 24:
                mask = mask.convert("RGB")
            mask.save(folder / f"{name}_lesion" / f"{name}_lesion.bmp")
    if table == "||":
        lines = ["|| Name || Histological Diagnosis || Clinical Diagnosis || Asymmetry ||"]
        lines += [f"|| {n} ||  || {d} || 0 ||" for n, d in diagnoses.items()]
    else:
        lines = ["Name\tClinical Diagnosis\tAsymmetry"]
        lines += [f"{n}\t{d}\t0" for n, d in diagnoses.items()]
    lines += ["", "Legends for Clinical Diagnosis:", "0 - Common Nevus"]
    (base / "PH2_dataset.txt").write_text("\r\n".join(lines) + "\r\n")
    return diagnoses


def stored_rar(root) -> bytes:
    """Every file under ``root`` as a RAR 4 archive whose members are stored (method
    0x30, no compression), as names relative to ``root``: what no free tool writes, and
    what rarfile reads without an external reader. Each block is ``HEAD_CRC`` (the low 16
    bits of the CRC-32 of the rest of the header), type, flags, size, then the body."""
    import struct
    import zlib
    from pathlib import Path

    def block(kind: int, flags: int, body: bytes, data: bytes = b"") -> bytes:
        header = struct.pack("<BHH", kind, flags, 7 + len(body)) + body
        return struct.pack("<H", zlib.crc32(header) & 0xFFFF) + header + data

    dos_time = ((2013 - 1980) << 25) | (7 << 21) | (1 << 16)  # 1 July 2013, 00:00
    out = b"Rar!\x1a\x07\x00" + block(0x73, 0, b"\x00" * 6)  # marker, archive header
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        data, name = path.read_bytes(), path.relative_to(root).as_posix().encode()
        body = struct.pack(
            "<IIBIIBBHI", len(data), len(data), 3, zlib.crc32(data), dos_time, 20, 0x30,
            len(name), 0o100644,
        ) + name  # fmt: skip
        out += block(0x74, 0x8000, body, data)  # a file: packed and unpacked sizes first
    return out + block(0x7B, 0x4000, b"")  # end of archive
