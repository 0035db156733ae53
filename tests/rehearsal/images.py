"""The images as their Dockerfiles and cloudbuild.yaml describe them: instructions, environment,
working directory, the tree each one holds (gpu_image/image_tree.py: the build context filtered by the
Dockerfile's own .dockerignore), the command it starts, and which Dockerfile builds which image reference."""
from __future__ import annotations

import json
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "gpu_image"))
import image_tree  # noqa: E402
from gpu_image.dockerfile import base_image, dockerfile_instructions  # noqa: E402,F401


def _env_pairs(args: str) -> dict[str, str]:
    tokens = shlex.split(args)
    if len(tokens) == 2 and "=" not in tokens[0]:
        return {tokens[0]: tokens[1]}
    return dict(t.split("=", 1) for t in tokens)


@dataclass
class Image:
    dockerfile: Path
    instructions: list[tuple[str, str]]
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    copies: list[tuple[list[str], str]] = field(default_factory=list)

    @property
    def dockerignore(self) -> Path:
        return self.dockerfile.with_name(self.dockerfile.name + ".dockerignore")

    @property
    def base(self) -> str:
        return base_image(self.instructions)

    @property
    def command(self) -> list[str]:
        """What `docker run <image>` starts: the last ENTRYPOINT followed by the last CMD, each in exec
        (JSON) form or shell form (`/bin/sh -c ...`), as Docker combines them."""
        def argv(args: str) -> list[str]:
            args = args.strip()
            return json.loads(args) if args.startswith("[") else ["/bin/sh", "-c", args]

        entrypoint = next((argv(a) for k, a in reversed(self.instructions) if k == "ENTRYPOINT"), [])
        cmd = next((argv(a) for k, a in reversed(self.instructions) if k == "CMD"), [])
        return entrypoint + cmd

    def files(self) -> list[str]:
        return image_tree.context_files(REPO, self.dockerignore)

    def assemble(self, into: Path) -> Path:
        """The image's WORKDIR as a directory here: every COPY, from the filtered build context."""
        context = self.files()
        for sources, dest in self.copies:
            target = into / Path(dest).relative_to(self.workdir) if dest.startswith(self.workdir) else into / dest
            for src in sources:
                src = src.rstrip("/")
                for rel in context:
                    if src == ".":
                        inner = rel
                    elif rel.startswith(src + "/"):
                        inner = rel[len(src) + 1:]
                    elif rel == src:
                        inner = Path(rel).name
                    else:
                        continue
                    out = target / inner
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes((REPO / rel).read_bytes())
        return into


def load(dockerfile: Path) -> Image:
    image = Image(dockerfile, dockerfile_instructions(dockerfile.read_text()))
    for keyword, args in image.instructions:
        if keyword == "ENV":
            image.env.update(_env_pairs(args))
        elif keyword == "WORKDIR":
            image.workdir = args
        elif keyword == "COPY":
            parts = [p for p in args.split() if not p.startswith("--")]
            image.copies.append((parts[:-1], parts[-1]))
    return image


def built_images(substitutions: dict[str, str]) -> dict[str, Path]:
    """image reference => the Dockerfile cloudbuild.yaml builds it from, with these substitutions."""
    config = yaml.safe_load((REPO / "cloudbuild.yaml").read_text())
    subs = {k: v for k, v in config["substitutions"].items()} | substitutions

    def expand(value: str) -> str:
        for _ in range(3):  # defaults may refer to other substitutions
            value = re.sub(r"\$\{(\w+)\}", lambda m: subs.get(m.group(1), m.group(0)), value)
        return value

    out = {}
    for step in config["steps"]:
        args = [expand(a) for a in step.get("args", [])]
        if args[:1] != ["build"]:
            continue
        dockerfile = REPO / args[args.index("--file") + 1]
        for i, arg in enumerate(args):
            if arg == "--tag":
                out[args[i + 1]] = dockerfile
    pushed = {expand(i) for i in config["images"]}
    return {ref: path for ref, path in out.items() if ref in pushed}
