#!/usr/bin/env bash
# Captcha strength: tesseract's exact solve rate on N captchas (default 1,000)
# from phoneauth and from the Flask original, under the five settings of the
# original's own measurement (../shared/baseline/bench/ocr_strength.py).
#
#   bench/ocr.sh            # ~15 minutes on 2 cores
#   N=300 bench/ocr.sh
#
# Needs tesseract (Debian: tesseract-ocr; installed here if missing and apt-get
# is available) and python3 with venv. Writes the JSON of each service and a
# sheet of 12 phoneauth samples (docs/captcha-samples.png) and prints a table.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
N="${N:-1000}"
BASELINE_SRC="${BASELINE_SRC:-$ROOT/../shared/baseline}"
OUT="bench/out/ocr-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"

if ! command -v tesseract >/dev/null; then
  if command -v apt-get >/dev/null; then apt-get install -y tesseract-ocr >&2; else
    echo "tesseract is missing (Debian: apt-get install tesseract-ocr)" >&2; exit 1; fi
fi

# The original's folder and venv (its captcha package, Pillow, pytesseract).
BL="$ROOT/target/bench/baseline"
if [ ! -x "$BL/.venv/bin/python" ] || ! "$BL/.venv/bin/python" -c 'import pytesseract, captcha' 2>/dev/null; then
  rm -rf "$BL" && mkdir -p "$(dirname "$BL")"
  cp -r "$BASELINE_SRC" "$BL" && chmod -R u+w "$BL"
  python3 -m venv "$BL/.venv"
  "$BL/.venv/bin/pip" install -q -r "$BL/requirements.txt" >&2
fi
PY="$BL/.venv/bin/python"

cargo build --release --locked --example captcha_samples >&2
rm -rf "$OUT/phoneauth" && "$ROOT/target/release/examples/captcha_samples" "$OUT/phoneauth" "$N" >/dev/null
ALPHABET="$(grep -o 'ALPHABET: &\[u8\] = b"[A-Z0-9]*"' src/captcha/mod.rs | sed 's/.*b"\(.*\)"/\1/')"

# One tesseract process per core; tesseract's own threads would only contend.
export OMP_THREAD_LIMIT=1
echo "== phoneauth: $N captchas (whitelist $ALPHABET)" >&2
"$PY" bench/ocr_strength.py --dir "$OUT/phoneauth" --alphabet "$ALPHABET" --n "$N" >"$OUT/phoneauth.json"
echo "== the Flask original: $N captchas" >&2
(cd "$BL" && "$PY" "$ROOT/bench/ocr_strength.py" --original . --n "$N") >"$OUT/original.json"

"$PY" - "$OUT" "$ROOT/docs/captcha-samples.png" <<'PYEOF'
import json, os, sys
from PIL import Image, ImageDraw
out, sheet_path = sys.argv[1], sys.argv[2]
res = {s: json.load(open(os.path.join(out, s + ".json"))) for s in ("original", "phoneauth")}
print(f"tesseract {res['phoneauth']['tesseract']}, exact solves (case-insensitive) of {res['phoneauth']['n']} captchas each:\n")
print("| setting | original | phoneauth |")
print("|---|---|---|")
for name in res["original"]["configs"]:
    cells = []
    for s in ("original", "phoneauth"):
        c = res[s]["configs"][name]
        lo, hi = c["ci95"]
        cells.append(f"{c['solved']}/{res[s]['n']} = {c['rate'] * 100:.2f} % (95 % CI {lo * 100:.2f}–{hi * 100:.2f}); chars {c['char_acc'] * 100:.1f} %")
    print(f"| {name} | {cells[0]} | {cells[1]} |")
a, b = res["original"]["any_config"], res["phoneauth"]["any_config"]
print(f"| solved by any setting | {a['solved']} = {a['rate'] * 100:.2f} % | {b['solved']} = {b['rate'] * 100:.2f} % |")

# A sheet of 12 samples with their answers, for a person to judge.
files = sorted(f for f in os.listdir(os.path.join(out, "phoneauth")) if f.endswith(".jpg"))[:12]
sheet = Image.new("RGB", (4 * 172, 3 * 82), "white")
draw = ImageDraw.Draw(sheet)
for i, f in enumerate(files):
    im = Image.open(os.path.join(out, "phoneauth", f))
    x, y = (i % 4) * 172 + 6, (i // 4) * 82 + 4
    sheet.paste(im, (x, y))
    draw.text((x, y + 62), f[:-4].rsplit("_", 1)[1], fill="black")
sheet.save(sheet_path)
PYEOF
echo "raw results: $OUT" >&2
