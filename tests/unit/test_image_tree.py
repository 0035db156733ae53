"""An image's tree (gpu_image/image_tree.py) is the build context filtered by its .dockerignore; the walk
skips excluded directories no `!` line reaches into (a checkout's virtualenvs made each call take ~20 s
of CPU) and must list exactly what a walk of every file lists (checked here on a small tree; the repository's
own trees were compared once by hand, the old walk taking 20 s of CPU per image in a checkout with its venvs)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "gpu_image"))
import image_tree  # noqa: E402

DOCKERIGNORE = """\
*
!keep/
!deep/**/reincluded.txt
!notes?.md
**/__pycache__
**/*.pyc
!keep/__pycache__/wanted.pyc
"""


def _every_file(context: Path, dockerignore: Path) -> list[str]:
    """The definition: every file and link of the context, each judged by the dockerignore."""
    patterns = image_tree.read_patterns(dockerignore)
    return [rel for rel in (p.relative_to(context).as_posix() for p in sorted(context.rglob("*"))
                            if p.is_file() or p.is_symlink())
            if not image_tree.excluded(rel, patterns)]


def test_the_tree_skips_excluded_directories_and_lists_what_every_file_would(tmp_path, monkeypatch):
    context = tmp_path / "context"
    for rel in ("keep/a.py", "keep/sub/b.py", "keep/__pycache__/a.pyc", "keep/__pycache__/wanted.pyc",
                "deep/excluded/dir/reincluded.txt", "deep/excluded/dir/other.txt", "notes1.md", "notes10.md",
                ".venv/lib/site-packages/tensorflow/big.py", "dashboard/node_modules/x/index.js", "top.txt"):
        (context / rel).parent.mkdir(parents=True, exist_ok=True)
        (context / rel).write_text(rel)
    (context / "keep" / "linked").symlink_to(context / "dashboard")  # a link is listed, never followed
    (context / "dangling").symlink_to(context / "nowhere")
    dockerignore = tmp_path / "Dockerfile.dockerignore"
    dockerignore.write_text(DOCKERIGNORE)

    walked = []
    real_walk = os.walk

    def recording_walk(top, *args, **kwargs):
        for root, dirs, files in real_walk(top, *args, **kwargs):
            walked.append(Path(root).relative_to(context).as_posix())
            yield root, dirs, files

    monkeypatch.setattr(image_tree.os, "walk", recording_walk)
    files = image_tree.context_files(context, dockerignore)
    assert files == _every_file(context, dockerignore)
    assert files == ["deep/excluded/dir/reincluded.txt", "keep/__pycache__/wanted.pyc", "keep/a.py", "keep/linked",
                     "keep/sub/b.py", "notes1.md"]
    assert "keep/sub" in walked and "deep/excluded/dir" in walked  # a `!` line can reach into these
    assert not [d for d in walked if d.startswith((".venv", "dashboard"))]  # nothing could come back from these

