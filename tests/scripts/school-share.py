#!/usr/bin/env python3
"""A generated school share, its normal nights, and ransomware attacks on it.

Used by tests/integration/ransomware_detect.rs and benches/e2e.sh, so both see the same share.
Everything is deterministic given --seed (and, for nights, the night number). Standard library
only.

  school-share.py generate DIR [--files 4000] [--seed 1]
      year/class/subject folders of docx and xlsx (real zip files), pdf, jpg, png and txt, a few
      KiB each, and about 1 in 400 a photo of 1.2-2 MiB (so that attack c differs from a).
  school-share.py night DIR --night K [--seed 1]
      a normal night: 1-3% of the files edited (each keeps its kind: a docx is rewritten as a
      docx, a photo as a JPEG), a few new documents, a few deleted.
  school-share.py event DIR KIND [--seed 1] [--count N]
      newyear   a new year group's folder of N documents (default 1000)
      move      a folder of about N files moved to a new place (default 2500: a year group to
                Archive/)
      delete    a class folder deleted
      photos    N photos added to a new trip folder (default 300)
  school-share.py attack DIR a|b|c|d [--fraction 0.05] [--night K] [--seed 1]
      a  the fraction of files encrypted in place
      b  encrypted and renamed to NAME.k3yx, a ransom note in each folder touched
      c  only the first 1 MiB of each file encrypted (smaller files entirely)
      d  a slow attack: night K (0-based) encrypts the next 3% of the files, in place
  "Encrypted" is XOR with a keystream from random.Random: incompressible, no file signature.
"""

import argparse
import io
import os
import random
import shutil
import sys
import zipfile

YEARS = ["Year7", "Year8", "Year9", "Year10", "Year11", "Year12", "Year13"]
SUBJECTS = ["English", "Maths", "Science", "History", "Geography", "Art", "Music", "French", "Computing"]
WORDS = (
    "the pupils will read chapter homework question answer lesson plan worksheet term "
    "assessment marks group project science experiment results history source essay "
    "poem number fraction equation map river volcano painting rhythm verb noun class "
    "teacher review feedback deadline revision exam paper school trip photo consent"
).split()
KINDS = ["docx"] * 35 + ["xlsx"] * 12 + ["pdf"] * 15 + ["jpg"] * 15 + ["png"] * 5 + ["txt"] * 18
ZIP_TIME = (2024, 9, 1, 8, 0, 0)
MIB = 1 << 20


def text(rng, words):
    return " ".join(rng.choice(WORDS) for _ in range(words)) + "\n"


def office(rng, kind, words):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        def add(name, data):
            z.writestr(zipfile.ZipInfo(name, ZIP_TIME), data, zipfile.ZIP_DEFLATED)
        add("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        body = "".join("<w:p>%s</w:p>" % text(rng, 12) for _ in range(words // 12 + 1))
        if kind == "docx":
            add("word/document.xml", "<w:document><w:body>%s</w:body></w:document>" % body)
        else:
            add("xl/worksheets/sheet1.xml", "<sheetData>%s</sheetData>" % body)
        # An embedded picture: office files are mostly compressed data.
        add("media/image1.bin", rng.randbytes(rng.randint(1000, 4000)))
    return buf.getvalue()


def content(rng, kind, big=False):
    if kind in ("docx", "xlsx"):
        return office(rng, kind, rng.randint(100, 600))
    if kind == "pdf":
        stream = text(rng, rng.randint(200, 900)).encode()
        return b"%PDF-1.4\n1 0 obj << /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"endstream\nendobj\n%%EOF\n"
    if kind == "jpg":
        size = rng.randint(int(1.2 * MIB), 2 * MIB) if big else rng.randint(3000, 12000)
        return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + rng.randbytes(size)
    if kind == "png":
        return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rng.randbytes(rng.randint(2000, 8000))
    return text(rng, rng.randint(300, 1500)).encode()


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def files_of(root):
    out = []
    for d, dirs, names in os.walk(root):
        dirs.sort()
        for n in sorted(names):
            out.append(os.path.join(d, n))
    return out


def generate(root, count, seed):
    rng = random.Random(seed)
    classes = ["%s%s" % (y, c) for y in YEARS for c in "ABC"]
    for i in range(count):
        cls = classes[i % len(classes)]
        year = cls[:-1]
        subject = SUBJECTS[(i // len(classes)) % len(SUBJECTS)]
        kind = rng.choice(KINDS)
        big = kind == "jpg" and i % 400 == 7
        name = "%s %s %04d.%s" % (subject, rng.choice(WORDS), i, kind)
        write(os.path.join(root, year, cls, subject, name), content(rng, kind, big))


def kind_of(path):
    ext = path.rsplit(".", 1)[-1].lower()
    return ext if ext in ("docx", "xlsx", "pdf", "jpg", "png", "txt") else "txt"


def night(root, k, seed):
    rng = random.Random(seed * 100003 + k)
    files = files_of(root)
    share = rng.uniform(0.01, 0.03)
    for path in rng.sample(files, max(1, int(len(files) * share))):
        kind = kind_of(path)
        if kind == "txt":
            with open(path, "ab") as f:
                f.write(text(rng, rng.randint(20, 200)).encode())
        else:
            write(path, content(rng, kind))
    for j in range(rng.randint(0, 8)):
        folder = os.path.dirname(rng.choice(files))
        kind = rng.choice(["docx", "xlsx", "pdf", "txt"])
        write(os.path.join(folder, "new work n%02d-%d.%s" % (k, j, kind)), content(rng, kind))
    for path in rng.sample(files, rng.randint(0, 3)):
        if os.path.exists(path):
            os.remove(path)


def event(root, kind, seed, count):
    rng = random.Random(seed * 7 + len(kind))
    if kind == "newyear":
        count = count or 1000
        for i in range(count):
            cls = "NewYear7%s" % "ABCD"[i % 4]
            k = rng.choice(["docx", "xlsx", "pdf", "txt"])
            name = "%s induction %04d.%s" % (SUBJECTS[i % len(SUBJECTS)], i, k)
            write(os.path.join(root, "NewYear7", cls, name), content(rng, k))
    elif kind == "move":
        # The year groups whose files add up to about `count`, moved into Archive/.
        count = count or 2500
        moved = 0
        os.makedirs(os.path.join(root, "Archive"), exist_ok=True)
        for year in YEARS[::-1]:
            src = os.path.join(root, year)
            if not os.path.isdir(src) or moved >= count:
                continue
            moved += len(files_of(src))
            os.rename(src, os.path.join(root, "Archive", year))
        print(moved)
    elif kind == "delete":
        classes = sorted(os.path.join(root, y, c) for y in YEARS if os.path.isdir(os.path.join(root, y))
                         for c in os.listdir(os.path.join(root, y)))
        victim = rng.choice(classes)
        print(len(files_of(victim)))
        shutil.rmtree(victim)
    elif kind == "photos":
        count = count or 300
        for i in range(count):
            write(os.path.join(root, "Trips", "Museum visit", "IMG_%04d.jpg" % i), content(rng, "jpg"))
    else:
        sys.exit("unknown event %s" % kind)


def encrypt(rng, data):
    key = rng.randbytes(len(data))
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(len(data), "little")


def attack(root, variant, fraction, k, seed):
    rng = random.Random(seed * 31 + ord(variant))
    files = files_of(root)
    if variant == "d":
        order = files[:]
        random.Random(seed).shuffle(order)
        per = max(1, int(len(order) * 0.03))
        chosen = order[k * per:(k + 1) * per]
    else:
        chosen = rng.sample(files, max(1, int(len(files) * fraction)))
    folders = set()
    for path in chosen:
        if not os.path.exists(path):
            continue
        with open(path, "rb") as f:
            data = f.read()
        if variant == "c":
            head = min(len(data), MIB)
            data = encrypt(rng, data[:head]) + data[head:]
        else:
            data = encrypt(rng, data)
        if variant == "b":
            os.remove(path)
            path = path + ".k3yx"
            folders.add(os.path.dirname(path))
        write(path, data)
    for folder in sorted(folders):
        write(os.path.join(folder, "HOW_TO_RECOVER_FILES.txt"),
              b"Your files are encrypted. Send 2 BTC to recover them.\n")
    print(len(chosen))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("dir")
    g.add_argument("--files", type=int, default=4000)
    g.add_argument("--seed", type=int, default=1)
    n = sub.add_parser("night")
    n.add_argument("dir")
    n.add_argument("--night", type=int, required=True)
    n.add_argument("--seed", type=int, default=1)
    e = sub.add_parser("event")
    e.add_argument("dir")
    e.add_argument("kind", choices=["newyear", "move", "delete", "photos"])
    e.add_argument("--seed", type=int, default=1)
    e.add_argument("--count", type=int, default=0)
    a = sub.add_parser("attack")
    a.add_argument("dir")
    a.add_argument("variant", choices=["a", "b", "c", "d"])
    a.add_argument("--fraction", type=float, default=0.05)
    a.add_argument("--night", type=int, default=0)
    a.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    if args.cmd == "generate":
        generate(args.dir, args.files, args.seed)
    elif args.cmd == "night":
        night(args.dir, args.night, args.seed)
    elif args.cmd == "event":
        event(args.dir, args.kind, args.seed, args.count)
    else:
        attack(args.dir, args.variant, args.fraction, args.night, args.seed)


if __name__ == "__main__":
    main()
