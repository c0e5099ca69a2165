#!/usr/bin/env python3
"""Generate the deterministic benchmark datasets for benches/compare.sh.

Usage: gen_datasets.py DATA_DIR [DATASET...]

Every byte is derived from a fixed seed, so two machines generate identical trees. Names are
fixed-width and alphanumeric, so `LC_ALL=C sort` of the paths equals sumpool's walk order and
the reference checksums from sha256sum can be compared byte for byte. A dataset directory that
that was completed before (a `.NAME.complete` marker beside it) is left alone.
"""

import os
import random
import sys

MIB = 1 << 20


def write_big(path, size, seed):
    rng = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(8 * MIB, left)
            f.write(rng.randbytes(n))
            left -= n


def gen_big(root):
    for i in range(4):
        write_big(os.path.join(root, f"part{i}.bin"), 512 * MIB, f"big{i}")


def gen_one(root):
    write_big(os.path.join(root, "one.bin"), 1024 * MIB, "one")


def gen_medium(root, files=2000, dirs=20, size=MIB, seed="medium"):
    rng = random.Random(seed)
    for i in range(files):
        d = os.path.join(root, f"d{i % dirs:03d}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i:06d}.bin"), "wb") as f:
            f.write(rng.randbytes(size))


def gen_small(root):
    rng = random.Random("small")
    for i in range(100_000):
        d = os.path.join(root, f"d{i % 1000:04d}")
        if i < 1000:
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i:06d}"), "wb") as f:
            f.write(rng.randbytes(4096))


def gen_tiny(root, files, seed="tiny"):
    """`files` files of 0 to 100 bytes, five directory levels of fan-out 5 (files at depth 6)."""
    rng = random.Random(seed)
    leaves = 5 ** 5
    made = set()
    for i in range(files):
        leaf = i % leaves
        parts = []
        for _ in range(5):
            parts.append(f"l{leaf % 5}")
            leaf //= 5
        d = os.path.join(root, *parts)
        if d not in made:
            os.makedirs(d, exist_ok=True)
            made.add(d)
        with open(os.path.join(d, f"f{i:07d}"), "wb") as f:
            f.write(rng.randbytes(rng.randrange(0, 101)))


def gen_mixed(root, data, position="first"):
    """One 1 GiB file plus 2,000 files of 1 MiB: hard links to `one` and `medium`, so the
    page cache holds them once. The 1 GiB file comes first, in the middle (between two
    halves of the small files) or last in walk order."""
    big = {"first": "big.bin", "middle": "m-big.bin", "last": "zz-big.bin"}[position]
    os.link(os.path.join(data, "one", "one.bin"), os.path.join(root, big))
    medium = os.path.join(data, "medium")
    dirs = sorted(os.listdir(medium))
    for n, d in enumerate(dirs):
        if position == "middle":
            parent = "a-files" if n < len(dirs) // 2 else "z-files"
        else:
            parent = "files"
        os.makedirs(os.path.join(root, parent, d), exist_ok=True)
        for f in sorted(os.listdir(os.path.join(medium, d))):
            os.link(os.path.join(medium, d, f), os.path.join(root, parent, d, f))


GENERATORS = {
    "big": gen_big,
    "one": gen_one,
    "medium": gen_medium,
    "small": gen_small,
    "tiny": lambda root: gen_tiny(root, 200_000),
    "tiny10k": lambda root: gen_tiny(root, 10_000),
    "tiny100k": lambda root: gen_tiny(root, 100_000),
    "tiny1m": lambda root: gen_tiny(root, 1_000_000),
}


def main():
    data = sys.argv[1]
    names = sys.argv[2:] or ["one", "big", "medium", "small", "tiny", "mixed", "mixed-middle",
                             "mixed-last"]
    for name in names:
        root = os.path.join(data, name)
        marker = os.path.join(data, f".{name}.complete")
        if os.path.exists(marker):
            continue
        if name.startswith("mixed"):
            for dep in ("one", "medium"):
                if not os.path.exists(os.path.join(data, f".{dep}.complete")):
                    sys.exit(f"mixed needs {dep}: generate it first")
        os.makedirs(root, exist_ok=True)
        print(f"generating {name} ...", file=sys.stderr, flush=True)
        if name.startswith("mixed"):
            gen_mixed(root, data, {"mixed": "first"}.get(name, name[len("mixed-"):]))
        else:
            GENERATORS[name](root)
        open(marker, "w").close()


if __name__ == "__main__":
    main()
