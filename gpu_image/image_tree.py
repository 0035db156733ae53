"""What an image holds: the build context (the repository root) filtered by the Dockerfile's own
`.dockerignore`, which each image's Dockerfile copies whole (`COPY . /app/`). Standard library only:
it runs inside the images' build checks (verify_image.py --tree) and in the rehearsal, which assembles
each image's tree here to start what Terraform runs from it.

Matching follows Docker's rules (docs.docker.com/build/concepts/context/#dockerignore-files): patterns
are relative to the context root, `*` and `?` stay inside one path element, `**` spans any number of
them, a pattern that matches a directory matches everything under it, `!` re-includes, and the last
matching line wins.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Iterable


def _lines(dockerignore: Path) -> list[tuple[bool, str]]:
    """(exclude?, glob relative to the context root) per line, comments and blank lines dropped."""
    out = []
    for raw in dockerignore.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:].strip() if negate else line
        out.append((not negate, pattern.strip("/").removeprefix("./")))
    return out


def read_patterns(dockerignore: Path) -> list[tuple[bool, re.Pattern]]:
    """(exclude?, compiled pattern) per line, comments and blank lines dropped."""
    return [(exclude, glob_pattern(pattern)) for exclude, pattern in _lines(dockerignore)]


def glob_pattern(pattern: str) -> re.Pattern:
    """A doublestar glob as a regular expression (Docker's and Terraform's fileset() rules agree here)."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:[^/]+/)*", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def excluded(path: str, patterns: list[tuple[bool, re.Pattern]]) -> bool:
    """Whether Docker leaves this context-relative file path out of the build context."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    verdict = False
    for exclude, pattern in patterns:
        if any(pattern.fullmatch(p) for p in prefixes):
            verdict = exclude
    return verdict


def context_files(context: Path, dockerignore: Path) -> list[str]:
    """Every file of the build context the dockerignore lets through (relative, sorted).

    An excluded directory that no `!` line can reach into is not walked (as Docker skips it): a
    checkout's virtualenvs, node_modules and test output hold hundreds of thousands of files."""
    lines = _lines(dockerignore)
    patterns = [(exclude, glob_pattern(pattern)) for exclude, pattern in lines]
    # What each re-inclusion starts with: a path under a directory can match it only where one of the two
    # is a prefix of the other.
    reincluded = [re.split(r"[*?]", pattern, maxsplit=1)[0] for exclude, pattern in lines if not exclude]

    def prunable(rel_dir: str) -> bool:
        below = rel_dir + "/"
        return excluded(rel_dir, patterns) and not any(
            below.startswith(start) or start.startswith(below) for start in reincluded)

    files = []
    for root, dirs, names in os.walk(context):
        rel_root = Path(root).relative_to(context).as_posix()
        prefix = "" if rel_root == "." else rel_root + "/"
        kept = []
        for name in dirs:
            if os.path.islink(os.path.join(root, name)):
                names.append(name)  # a link is one entry of the context, never walked into
            elif not prunable(prefix + name):
                kept.append(name)
        dirs[:] = kept
        files += [prefix + name for name in names if not excluded(prefix + name, patterns)
                  and (os.path.isfile(os.path.join(root, name)) or os.path.islink(os.path.join(root, name)))]
    return sorted(files, key=lambda rel: rel.split("/"))


def assemble(context: Path, dockerignore: Path, into: Path) -> list[str]:
    """Copy what `COPY . <dir>/` would put in the image into `into`; returns the files."""
    files = context_files(context, dockerignore)
    for rel in files:
        target = into / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(context / rel, target)
    return files


def whitelist(dockerignore: Path) -> list[str]:
    """The paths the dockerignore re-includes (`!path`): each must be in the image."""
    return [line.strip()[1:].strip().strip("/") for line in dockerignore.read_text().splitlines()
            if line.strip().startswith("!")]


def tree_problems(root: Path, dockerignore: Path, ignore: Iterable[str] = ()) -> list[str]:
    """In an image: files the dockerignore would have left out (a builder that ignored it) and
    whitelisted paths that are missing."""
    patterns = read_patterns(dockerignore)
    skip = tuple(ignore)
    problems = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith(skip) and excluded(rel, patterns):
            problems.append(f"{rel} is in the image but {dockerignore.name} leaves it out")
    for rel in whitelist(dockerignore):
        if not (root / rel).exists():
            problems.append(f"{rel} is whitelisted but not in the image")
    return problems
