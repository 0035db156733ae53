"""Reading the images' Dockerfiles: instructions, build arguments, the base image and the `pip install`
lines. The one parser the image checks (image_pins.py) and the tests (tests/rehearsal/images.py,
tests/unit/test_gpu_image.py) share, so what they read is what the builder runs."""
from __future__ import annotations

import re
import shlex


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, rest = current.partition(" ")
        out.append((keyword.upper(), rest.strip()))
        current = ""
    return out


def build_args(instructions: list[tuple[str, str]]) -> dict[str, str]:
    """ARG name -> default value (ARGs without a default are left out)."""
    return dict(a.split("=", 1) for k, a in instructions if k == "ARG" and "=" in a)


def expand(value: str, args: dict[str, str]) -> str:
    """${NAME} / $NAME replaced by the build argument's default (KeyError for an undeclared one)."""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m.group(1) or m.group(2)], value)


def base_image(instructions: list[tuple[str, str]]) -> str:
    """The first FROM's image with its build arguments' defaults substituted."""
    base = next(a for k, a in instructions if k == "FROM").split()[0]
    return expand(base, build_args(instructions))


def pip_install_commands(instructions: list[tuple[str, str]]) -> list[list[str]]:
    """The argument lists of every `pip install` inside RUN instructions."""
    commands = []
    separators = {"&&", "||", ";", "|"}
    for keyword, args in instructions:
        if keyword != "RUN":
            continue
        tokens = shlex.split(args)
        for i in range(len(tokens) - 1):
            start = None
            if tokens[i].endswith("pip") and tokens[i + 1] == "install":
                start = i + 2
            elif tokens[i:i + 3] == ["-m", "pip", "install"]:
                start = i + 3
            if start is not None:
                end = next((j for j in range(start, len(tokens)) if tokens[j] in separators), len(tokens))
                commands.append(tokens[start:end])
    return commands
