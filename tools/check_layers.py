#!/usr/bin/env python3
"""The include layering check: every #include "slm/..." in include/slm/ points down the layers.

The layer order is written once, in docs/architecture.md, between the lines `<!-- layers -->` and
`<!-- /layers -->`: one layer per line, lowest first; a line may name several folders (or files),
which are then siblings: each may include the layers below it but not the others on its line.
A header belongs to the longest entry that is a prefix of its path under include/slm/. Within
one entry any include is allowed (a folder's files use each other).

Also: a .hpp never includes a .cuh, so every .hpp compiles without nvcc.

Usage: check_layers.py [REPO]    exit 0 when clean, 1 listing each wrong include, 2 on bad input.
"""
import pathlib
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"(slm/[^"]+)"', re.M)


def read_layers(doc: pathlib.Path):
    text = doc.read_text()
    m = re.search(r"<!-- layers -->\n(.*?)<!-- /layers -->", text, re.S)
    if not m:
        raise ValueError(f"{doc}: no <!-- layers --> ... <!-- /layers --> block")
    rank = {}
    for level, line in enumerate(l for l in m.group(1).splitlines() if l.strip() and not l.startswith("```")):
        for entry in line.split():
            if entry in rank:
                raise ValueError(f"{doc}: '{entry}' is named twice in the layer order")
            rank[entry.rstrip("/")] = level
    return rank


def entry_of(path: str, rank):
    best = None
    for entry in rank:
        if path == entry or path.startswith(entry + "/"):
            if best is None or len(entry) > len(best):
                best = entry
    return best


def main(argv):
    repo = pathlib.Path(argv[1] if len(argv) > 1 else pathlib.Path(__file__).resolve().parents[1])
    try:
        rank = read_layers(repo / "docs/architecture.md")
    except (OSError, ValueError) as e:
        print(f"check_layers: {e}", file=sys.stderr)
        return 2
    root = repo / "include/slm"
    if not root.is_dir():
        print(f"check_layers: {root} is not a directory", file=sys.stderr)
        return 2
    problems = []
    headers = sorted(p for p in root.rglob("*") if p.suffix in (".hpp", ".cuh"))
    for header in headers:
        here = header.relative_to(root).as_posix()
        mine = entry_of(here, rank)
        if mine is None:
            problems.append(f"include/slm/{here}: in no layer of docs/architecture.md (add its folder there)")
            continue
        text = header.read_text()
        for line_no, target in ((text[:m.start()].count("\n") + 1, m.group(1))
                                for m in INCLUDE.finditer(text)):
            there = target[len("slm/"):]
            if header.suffix == ".hpp" and there.endswith(".cuh"):
                problems.append(f"include/slm/{here}:{line_no}: includes {target}, a .cuh, from a .hpp "
                                "(a .hpp must compile without nvcc)")
            theirs = entry_of(there, rank)
            if theirs is None:
                problems.append(f"include/slm/{here}:{line_no}: includes {target}, which is in no layer")
            elif theirs != mine and rank[theirs] >= rank[mine]:
                how = "a sibling on its own layer" if rank[theirs] == rank[mine] else "a layer above it"
                problems.append(f"include/slm/{here}:{line_no}: {mine} (layer {rank[mine]}) includes "
                                f"{target}, from {theirs} (layer {rank[theirs]}): {how}")
    for p in problems:
        print(p)
    if problems:
        print(f"check_layers: {len(problems)} include(s) against the layer order in docs/architecture.md")
        return 1
    print(f"check_layers: {len(headers)} headers, every include points down the layers")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
