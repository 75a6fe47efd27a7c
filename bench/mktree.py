#!/usr/bin/env python3
"""mktree: write the deterministic tree that bench/fs tars and extracts.

    mktree.py DIR

DIR must not exist. The tree is the same bytes on every run and every machine (a seeded
generator, fixed modes and times): 20 top directories of 15 subdirectories each (320
directories); in each of the 300 leaf directories 180 small files of 1-7 KiB (54,000 files,
about 211 MiB) and 2 relative symlinks (600); and 48 files of 8 MiB spread over the top
directories (384 MiB). With DIR itself that is 54,969 entries and about 595 MiB: the shape of
a source tree with some build output or a small distribution image. Prints
"ENTRIES BYTES" (entries including DIR, as `find DIR | wc -l` counts them).
"""

import os
import random
import sys

TOPS, SUBS, SMALL, LINKS = 20, 15, 180, 2
LARGE, LARGE_BYTES = 48, 8 << 20
MTIME = 946684800  # 2000-01-01T00:00:00Z


def write(path: str, data: bytes, paths: list) -> int:
    """Writes one file of the tree and records it; returns its size."""
    with open(path, "wb") as out:
        out.write(data)
    paths.append(path)
    return len(data)


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    root = sys.argv[1]
    os.mkdir(root)
    rng = random.Random(3)
    # One random block, sliced: what matters is the number and size of the writes, not that
    # every byte differs (tar is not compressed).
    block = rng.randbytes(LARGE_BYTES + 8192)
    entries, total = 1, 0
    paths = []
    for t in range(TOPS):
        top = os.path.join(root, f"d{t:02}")
        os.mkdir(top)
        paths.append(top)
        entries += 1
        for s in range(SUBS):
            sub = os.path.join(top, f"s{s:02}")
            os.mkdir(sub)
            paths.append(sub)
            entries += 1
            for f in range(SMALL):
                size = rng.randrange(1024, 7 * 1024)
                off = rng.randrange(0, len(block) - size)
                total += write(os.path.join(sub, f"f{f:03}.dat"), block[off:off + size], paths)
                entries += 1
            for k in range(LINKS):
                p = os.path.join(sub, f"link{k}")
                os.symlink(f"f{k:03}.dat", p)
                paths.append(p)
                entries += 1
    for n in range(LARGE):
        off = rng.randrange(0, 8192)
        path = os.path.join(root, f"d{n % TOPS:02}", f"large{n:02}.bin")
        total += write(path, block[off:off + LARGE_BYTES], paths)
        entries += 1
    # Fixed modes and times, deepest first so a directory's time is set after its entries.
    for p in reversed(paths):
        if os.path.islink(p):
            os.utime(p, (MTIME, MTIME), follow_symlinks=False)
            continue
        os.chmod(p, 0o755 if os.path.isdir(p) else 0o644)
        os.utime(p, (MTIME, MTIME))
    os.chmod(root, 0o755)
    os.utime(root, (MTIME, MTIME))
    print(entries, total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
