"""Captcha strength: how often does off-the-shelf tesseract read a captcha
exactly (case-insensitive)?

Reads captchas from a directory of JPEG files named `<anything>_<ANSWER>.jpg`
(what `cargo run --release --example captcha_samples -- DIR N` writes), or
draws them with the Flask original's generator (`--original BASELINE_DIR`).
Each is read back from its JPEG bytes, as a client receives it, and given to
tesseract under the five settings of the original's own measurement
(../shared/baseline/bench/ocr_strength.py): raw image at psm 7 and psm 8,
grey + threshold at 220 + x2 upscale at psm 8, and raw psm 7/8 with a
whitelist that allows either case. The whitelist is the captcha's own
alphabet, which helps the attacker.

  python bench/ocr_strength.py --dir target/bench/ocr/phoneauth --alphabet ACEFHKMNPRWXY3479
  python bench/ocr_strength.py --original target/bench/baseline --n 1000

Prints one JSON object."""
import argparse
import math
import os
import sys
import time
from io import BytesIO
from multiprocessing import Pool
import json

from PIL import Image, ImageOps
import pytesseract

CONFIG_NAMES = ["raw_psm7", "raw_psm8", "thresh_psm8", "raw_psm7_anycase", "raw_psm8_anycase"]


def configs(alphabet):
    both = alphabet + alphabet.lower()
    return {
        "raw_psm7": ("raw", 7, alphabet),
        "raw_psm8": ("raw", 8, alphabet),
        "thresh_psm8": ("thresh", 8, alphabet),
        "raw_psm7_anycase": ("raw", 7, both),
        "raw_psm8_anycase": ("raw", 8, both),
    }


def preprocess(im, kind):
    if kind == "raw":
        return im
    g = ImageOps.grayscale(im)
    bw = g.point(lambda v: 0 if v < 220 else 255, "L")
    return bw.resize((bw.width * 2, bw.height * 2), Image.LANCZOS)


def solve(job):
    text, jpeg, cfgs = job
    im = Image.open(BytesIO(jpeg)).convert("RGB")
    out = {}
    for name, (kind, psm, wl) in cfgs.items():
        cfg = "--psm %d --oem 1 -c tessedit_char_whitelist=%s" % (psm, wl)
        got = pytesseract.image_to_string(preprocess(im, kind), config=cfg, timeout=20)
        out[name] = "".join(ch for ch in got if not ch.isspace())
    return text, out


def wilson(k, n, z=1.96):
    """95 % confidence interval of a proportion (Wilson score)."""
    if n == 0:
        return (0.0, 0.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def from_dir(path, n):
    jobs = []
    for name in sorted(os.listdir(path)):
        if name.endswith(".jpg") and "_" in name:
            answer = name[:-4].rsplit("_", 1)[1]
            with open(os.path.join(path, name), "rb") as f:
                jobs.append((answer, f.read()))
    return jobs[:n] if n else jobs


def from_original(baseline, n):
    sys.path.insert(0, os.path.abspath(baseline))
    os.environ.setdefault("REDIS_PORT", "6380")  # importing the app does not contact Redis
    from app import captcha, CAPTCHA_ALPHABET  # noqa: E402

    jobs = []
    for _ in range(n):
        _, text, jpeg = captcha.generate_captcha()
        jobs.append((text, jpeg))
    return jobs, CAPTCHA_ALPHABET


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", help="directory of <n>_<ANSWER>.jpg files")
    ap.add_argument("--alphabet", help="the captcha alphabet (tesseract whitelist), with --dir")
    ap.add_argument("--original", help="the Flask original's folder: draw with its generator")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--configs", default=",".join(CONFIG_NAMES), help="comma-separated subset of the settings")
    args = ap.parse_args()
    if args.original:
        jobs, alphabet = from_original(args.original, args.n)
        service = "original"
    else:
        if not (args.dir and args.alphabet):
            ap.error("--dir and --alphabet, or --original")
        jobs, alphabet = from_dir(args.dir, args.n), args.alphabet
        service = "phoneauth"
    wanted = args.configs.split(",")
    cfgs = {k: v for k, v in configs(alphabet).items() if k in wanted}
    t0 = time.perf_counter()
    with Pool(max(1, args.workers)) as pool:
        results = pool.map(solve, [(t, j, cfgs) for t, j in jobs], chunksize=4)
    n = len(results)
    summary = {
        "service": service,
        "n": n,
        "tesseract": str(pytesseract.get_tesseract_version()).splitlines()[0],
        "whitelist": alphabet,
        "elapsed_s": round(time.perf_counter() - t0, 1),
        "configs": {},
    }
    for name in cfgs:
        exact = sum(1 for t, o in results if o[name].upper() == t.upper())
        chars = sum(sum(1 for a, b in zip(o[name].upper(), t.upper()) if a == b) for t, o in results)
        lo, hi = wilson(exact, n)
        summary["configs"][name] = {
            "solved": exact,
            "rate": round(exact / n, 4),
            "ci95": [round(lo, 4), round(hi, 4)],
            "char_acc": round(chars / (4 * n), 4),
            "len4": sum(1 for _, o in results if len(o[name]) == 4),
            "solved_answers": [t for t, o in results if o[name].upper() == t.upper()],
        }
    anyc = sum(1 for t, o in results if any(v.upper() == t.upper() for v in o.values()))
    summary["any_config"] = {"solved": anyc, "rate": round(anyc / n, 4)}
    summary["examples"] = [{"truth": t, **o} for t, o in results[:6]]
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
