#!/usr/bin/env python3
"""Recover files from a firesafe repository without firesafe.

    recover.py REPO_DIR KEY_FILE OUT_DIR [--snapshot PREFIX]

REPO_DIR is a repository directory (a copy of the NAS share or of the bucket), KEY_FILE an age
identity file that one of its key envelopes is for, OUT_DIR a new or empty directory. Restores the
newest snapshot, or the one whose id starts with PREFIX: regular files, directories (with their
modes and modification times) and symlinks. Hard links come back as separate copies; devices,
sockets and named pipes, owners and extended attributes are not restored.

Needs Python 3.8+ and the `age` and `zstd` command-line tools (Debian: apt-get install age zstd).
If the Python `blake3` module is installed, every object and blob is also checked against its id.
The format is described in docs/FORMAT.md; this script follows it step by step.
"""

import argparse
import datetime
import functools
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

try:
    import blake3  # optional: pip install blake3
except ImportError:
    blake3 = None

HEX64 = re.compile(r"[0-9a-f]{64}")


class Failure(Exception):
    pass


def run(cmd, data):
    """Runs a tool with `data` on stdin; returns its stdout."""
    p = subprocess.run(cmd, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise Failure(p.stderr.decode(errors="replace").strip().split("\n")[0])
    return p.stdout


def age_decrypt(identity_file, data):
    return run(["age", "--decrypt", "--identity", identity_file], data)


def zstd_decompress(data):
    return run(["zstd", "--decompress", "--stdout", "--quiet"], data)


class Repo:
    def __init__(self, root, key_file):
        self.root = root
        self.blobs_read = 0
        config = json.loads(self.read("config"))
        if config.get("format") != "firesafe" or config.get("version") != 1:
            raise Failure("%s is not a firesafe version 1 repository" % root)
        self.open_envelope(key_file)

    def read(self, key, check_name=False):
        """An object's stored bytes; with check_name, checked against its name (plain BLAKE3)."""
        with open(os.path.join(self.root, key), "rb") as f:
            data = f.read()
        if check_name and blake3 and blake3.blake3(data).hexdigest() != key.rsplit("/", 1)[-1]:
            raise Failure("%s: its content does not match its name (damaged)" % key)
        return data

    def list(self, directory):
        """Object keys under a directory, sorted; only names that are 64 hex digits."""
        out = []
        for parent, _, names in os.walk(os.path.join(self.root, directory)):
            rel = os.path.relpath(parent, self.root).replace(os.sep, "/")
            out += [rel + "/" + n for n in names if HEX64.fullmatch(n)]
        return sorted(out)

    def open_envelope(self, key_file):
        """Step 1: find the envelope KEY_FILE opens; write the repository identity to a temp file."""
        envelopes = self.list("keys")
        for key in envelopes:
            try:
                secrets = json.loads(age_decrypt(key_file, self.read(key)))
            except Failure:
                continue  # an envelope for another key, or for a passphrase
            fd, self.identity = tempfile.mkstemp(prefix="firesafe-identity-")  # mode 0600
            with os.fdopen(fd, "w") as f:
                f.write(secrets["identity"] + "\n")
            self.chunk_key = bytes.fromhex(secrets["chunk_key"])
            print("opened key envelope %s" % key)
            return
        raise Failure("%s opens none of the %d key envelope(s) in %s/keys"
                      % (key_file, len(envelopes), self.root))

    def close(self):
        if getattr(self, "identity", None):
            os.remove(self.identity)

    def open_sealed(self, key):
        """A sealed object: JSON inside zstd inside age."""
        return json.loads(zstd_decompress(age_decrypt(self.identity, self.read(key, True))))

    def load_index(self):
        """Step 2: blob id -> (pack id, entry). The first index object (by name) listing a blob wins."""
        self.blobs = {}
        for key in self.list("index"):
            for pack in self.open_sealed(key)["packs"]:
                for entry in pack["blobs"]:
                    self.blobs.setdefault(entry["id"], (pack["id"], entry))

    @functools.lru_cache(maxsize=4)
    def pack(self, pack_id):
        """A pack's plaintext and the length of its body: blobs, then header JSON, then the
        header's length as 4 bytes little-endian."""
        plain = age_decrypt(self.identity, self.read("data/%s/%s" % (pack_id[:2], pack_id), True))
        if len(plain) < 4 or struct.unpack("<I", plain[-4:])[0] > len(plain) - 4:
            raise Failure("pack %s has no valid trailer" % pack_id)
        return plain, len(plain) - 4 - struct.unpack("<I", plain[-4:])[0]

    def blob(self, blob_id):
        """Step 4: one blob's plaintext: index -> pack -> offset/length -> zstd -> check."""
        if blob_id not in self.blobs:
            raise Failure("blob %s is in no index object" % blob_id)
        pack_id, e = self.blobs[blob_id]
        plain, body = self.pack(pack_id)
        if e["offset"] + e["length"] > body:
            raise Failure("blob %s lies outside pack %s" % (blob_id, pack_id))
        data = plain[e["offset"]:e["offset"] + e["length"]]
        if e["zstd"]:
            data = zstd_decompress(data)
        if len(data) != e["raw_length"]:
            raise Failure("blob %s is %d bytes, expected %d" % (blob_id, len(data), e["raw_length"]))
        if blake3 and blake3.blake3(data, key=self.chunk_key).hexdigest() != blob_id:
            raise Failure("blob %s in pack %s does not match its id (damaged)" % (blob_id, pack_id))
        self.blobs_read += 1
        return data

    def tree(self, blob_id):
        return json.loads(self.blob(blob_id))["entries"]


def start_time(snapshot):
    """Sort key for a snapshot's `start` (RFC 3339, e.g. 2026-11-23T14:28:02.936102972Z)."""
    m = re.fullmatch(r"(.{19})(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)", snapshot["start"])
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    seconds = datetime.datetime.fromisoformat(m.group(1) + zone).timestamp()
    return (int(seconds), int((m.group(2) or "").ljust(9, "0")))


def choose_snapshot(repo, prefix):
    """Step 3: the newest snapshot (by start time, then id), or the one whose id starts with PREFIX."""
    snapshots = [(start_time(s), key.split("/")[-1], s)
                 for key in repo.list("snapshots") for s in [repo.open_sealed(key)]]
    if prefix:
        snapshots = [x for x in snapshots if x[1].startswith(prefix.lower())]
        if len(snapshots) != 1:
            raise Failure("%d snapshots have an id starting with %s" % (len(snapshots), prefix))
    if not snapshots:
        raise Failure("the repository has no snapshots")
    _, snap_id, snap = max(snapshots, key=lambda x: x[:2])
    print("snapshot %s: source %s, taken %s, paths %s"
          % (snap_id, snap["source"], snap["start"], ", ".join(snap["paths"])))
    return snap


def name_bytes(name):
    """A name is a JSON string (UTF-8) or an array of byte values; it must be one safe component."""
    b = name.encode("utf-8") if isinstance(name, str) else bytes(name)
    if b in (b"", b".", b"..") or b"/" in b or b"\0" in b:
        raise Failure("unsafe name %r in a tree" % b)
    return b


def target_bytes(target):
    """A symlink target: encoded like a name, but any bytes (it may contain '/')."""
    return target.encode("utf-8") if isinstance(target, str) else bytes(target)


def recover(repo, snap, out):
    """Step 5: walk the trees, then write directories, files and symlinks under `out`."""
    dirs, files, symlinks, skipped = [], [], [], []
    todo = [(out, repo.tree(snap["tree"]))]
    while todo:
        parent, entries = todo.pop()
        names = [name_bytes(node["name"]) for node in entries]
        if len(set(names)) != len(names):
            raise Failure("a tree holds the same name twice")
        for name, node in zip(names, entries):
            path = os.path.join(parent, name)
            if node["type"] == "dir":
                dirs.append((path, node))
                todo.append((path, repo.tree(node["subtree"])))
            elif node["type"] == "file":
                files.append((path, node))
            elif node["type"] == "symlink":
                symlinks.append((path, node))
            else:
                skipped.append(path)
    for path, node in sorted(dirs, key=lambda d: d[0]):
        os.mkdir(path, 0o700)
    failed = []
    for path, node in files:
        try:
            with open(path, "xb") as f:
                for blob_id in node.get("content", []):
                    f.write(repo.blob(blob_id))
            os.chmod(path, node["mode"])
            os.utime(path, ns=(mtime(node), mtime(node)))
        except Failure as e:
            os.remove(path)  # never leave a partial file under the real name
            failed.append(path)
            print("FAILED %s: %s" % (os.fsdecode(path), e), file=sys.stderr)
    for path, node in symlinks:  # last, so nothing is ever written through one
        os.symlink(target_bytes(node["target"]), path)
        os.utime(path, ns=(mtime(node), mtime(node)), follow_symlinks=False)
    for path, node in sorted(dirs, key=lambda d: d[0], reverse=True):  # deepest first
        os.chmod(path, node["mode"])
        os.utime(path, ns=(mtime(node), mtime(node)))
    for path in skipped:
        print("skipped %s (not a file, directory or symlink)" % os.fsdecode(path), file=sys.stderr)
    print("recovered %d files, %d directories, %d symlinks into %s (%d blobs, %s)"
          % (len(files) - len(failed), len(dirs), len(symlinks), os.fsdecode(out),
             repo.blobs_read, "checked against their ids" if blake3 else "ids NOT checked"))
    return not failed


def mtime(node):
    return node["mtime"] * 1_000_000_000 + node["mtime_nsec"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("repo_dir")
    ap.add_argument("key_file")
    ap.add_argument("out_dir")
    ap.add_argument("--snapshot", metavar="PREFIX", help="snapshot id or its first digits")
    args = ap.parse_args()
    missing = [tool for tool in ("age", "zstd") if shutil.which(tool) is None]
    if missing:
        sys.exit("recover.py: %s not found; install it (Debian/Ubuntu: apt-get install age zstd)"
                 % " and ".join(missing))
    if blake3 is None:
        print("note: Python module blake3 not found; blobs and objects are NOT checked against "
              "their ids (age still detects damaged objects, not misnamed ones)", file=sys.stderr)
    repo = None
    try:
        out = os.fsencode(os.path.abspath(args.out_dir))
        os.makedirs(out, exist_ok=True)
        if os.listdir(out):
            raise Failure("%s is not empty; give a new or empty directory" % args.out_dir)
        repo = Repo(args.repo_dir, args.key_file)
        repo.load_index()
        ok = recover(repo, choose_snapshot(repo, args.snapshot), out)
    except KeyError as e:
        sys.exit("recover.py: an object lacks the field %s (damaged, or not format 1)" % e)
    except (Failure, OSError, ValueError) as e:
        sys.exit("recover.py: %s" % e)
    finally:
        if repo:
            repo.close()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
