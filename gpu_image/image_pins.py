"""Does each image's pinned closure install for that image's own Python and platform?

    python -m gpu_image.image_pins                          # every image, as its Dockerfile says
    python -m gpu_image.image_pins --image gpu --python 3.10 --glibc 2.31   # what-if for one image

For each image this reads, FROM ITS DOCKERFILE, the Python version (ARG PYTHON_VERSION), the base's glibc
(ARG GLIBC_VERSION, i.e. the highest manylinux_2_N its wheels may need) and the `pip install` line (its
-c constraints, -r requirement files, extra requirements and flags), then resolves the closure the way
the build would, against the public package index only, for that Python on manylinux x86_64:

- `pip install --dry-run --ignore-installed --report` with --python-version/--abi/--platform and
  --only-binary=:all:. pip does not widen an explicit manylinux_2_N to lower levels
  (pip/_internal/utils/compatibility_tags.py expands only manylinux2014/2010 and macOS), so every
  level up to the base's is passed.
- A pin the resolver cannot take is looked up on the index (PEP 691 JSON). When its version ships only
  an sdist (for this target), the sdist is built with `pip wheel --no-deps`. An image without a compiler
  (ARG COMPILER=none) gets compilers that always fail: only a pure `*-none-any` wheel counts. An image
  whose base ships one (e.g. Beam's SDK image, FROM python:<v>-bullseye) may build native code: built
  here with this machine's compiler when this Python is the image's (for another Python it is reported
  unverified). An sdist whose Requires-Python excludes the image's Python does not count. A pin with no
  wheel for the image's tags and no such sdist fails, naming it, and is lifted from the constraints so
  the resolver goes on to report every other failing pin in the same run.
- The resolved closure: every distribution must be pinned at the resolved version (else drift), and
  its Requires-Python must admit the image's Python, except the caps listed in KNOWN_PYTHON_CAPS that
  the Dockerfile knowingly overrides with --ignore-requires-python (verify_image.KNOWN_PYTHON_CAPS).

Isolated from this machine's pip configuration (PIP_CONFIG_FILE=/dev/null, no PIP_* variables): local
wheel directories, indexes and constraints that Cloud Build does not have must not answer for it. pip
revalidates every index page (`Cache-Control: max-age=0`, pip/_internal/index/collector.py), so only
immutable files come from the cache: downloaded wheels (pip's cache) and the pure wheels built here.
Exit 0 when every image's closure holds, 1 otherwise, 2 when the index cannot be reached.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Optional

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename
from packaging.version import Version

if __package__ in (None, ""):  # run as a script: gpu_image/image_pins.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gpu_image.dockerfile import build_args, dockerfile_instructions, pip_install_commands  # noqa: E402
from gpu_image import verify_image  # noqa: E402
from gpu_image.verify_image import constraint_pins  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILES = {"gpu": "gpu_image/Dockerfile", "dataflow": "dataflow_image/Dockerfile",
               "serving": "serving_image/Dockerfile"}
INDEX_URL = "https://pypi.org/simple"
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "trainyard" / "image-pins"
# The oldest manylinux level (manylinux1 == manylinux_2_5, PEP 600) and the legacy aliases of later ones.
MANYLINUX_FIRST = 5
LEGACY_MANYLINUX = {5: "manylinux1", 12: "manylinux2010", 17: "manylinux2014"}

# The Requires-Python caps the images knowingly override (--ignore-requires-python), with their reasons:
# kept with the build checks, which apply the same list to what an image has installed.
KNOWN_PYTHON_CAPS = verify_image.KNOWN_PYTHON_CAPS
MAX_ROUNDS = 60
# Stands for "the newest patch release" of the declared minor version (see _admits).
NEWEST_PATCH = 99


class IndexUnreachable(RuntimeError):
    """The package index did not answer: nothing can be concluded about the pins."""


@dataclass
class ImageSpec:
    """What an image's Dockerfile says it installs, and for which Python and platform."""
    image: str
    dockerfile: Path
    python: str                       # "3.11"
    glibc: str                        # "2.36"
    constraints: Path
    requirement_files: list[Path]
    requirements: list[str]           # requirement arguments on the pip line itself
    ignore_requires_python: bool
    compiler: str = "none"            # ARG COMPILER: "none", or what the base ships (e.g. "g++")

    @property
    def builds_native_sdists(self) -> bool:
        return self.compiler != "none"

    @property
    def platforms(self) -> list[str]:
        major, minor = (int(p) for p in self.glibc.split(".")[:2])
        if major != 2 or minor < MANYLINUX_FIRST:
            raise ValueError(f"{self.dockerfile}: glibc {self.glibc} is below manylinux1")
        out = [f"manylinux_2_{n}_x86_64" for n in range(minor, MANYLINUX_FIRST - 1, -1)]
        out += [f"{legacy}_x86_64" for n, legacy in sorted(LEGACY_MANYLINUX.items(), reverse=True) if n <= minor]
        # The tag of a wheel built from an sdist on the image itself. PyPI refuses linux_x86_64 uploads
        # (PEP 513), so only the wheels this checker builds carry it.
        return out + (["linux_x86_64"] if self.builds_native_sdists else [])

    @property
    def abi(self) -> str:
        return "cp" + self.python.replace(".", "")

    def tags(self) -> set[str]:
        """Every wheel tag pip accepts for this target (packaging.tags, as pip computes them)."""
        version = tuple(int(p) for p in self.python.split("."))
        tags = list(cpython_tags(version, abis=[self.abi], platforms=self.platforms))
        tags += list(compatible_tags(version, interpreter=self.abi, platforms=self.platforms))
        return {str(t) for t in tags}


@dataclass
class ImageResult:
    spec: ImageSpec
    failures: dict[str, str] = field(default_factory=dict)   # name -> why
    resolved: dict[str, str] = field(default_factory=dict)   # name -> version
    built: list[str] = field(default_factory=list)           # pure wheels built from sdists
    allowed_caps: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def _declared_version(args: dict[str, str], dockerfile: Path, name: str, what: str) -> str:
    """A major.minor version the Dockerfile declares as `ARG name=...` (the image's Python or glibc)."""
    value = args.get(name)
    if not value or not re.fullmatch(r"\d+\.\d+", value):
        raise ValueError(f"{dockerfile}: no `ARG {name}=<major.minor>` declares the image's {what} (found {value!r})")
    return value


def read_image_spec(image: str, root: Path = REPO_ROOT, python: Optional[str] = None,
                    glibc: Optional[str] = None, compiler: Optional[str] = None) -> ImageSpec:
    """The image's target and install line, from its Dockerfile (python/glibc override it for what-ifs)."""
    dockerfile = root / DOCKERFILES[image]
    instructions = dockerfile_instructions(dockerfile.read_text())
    args = build_args(instructions)
    python = python or _declared_version(args, dockerfile, "PYTHON_VERSION", "Python")
    glibc = glibc or _declared_version(args, dockerfile, "GLIBC_VERSION", "glibc")
    compiler = compiler or args.get("COMPILER")
    if not compiler:
        raise ValueError(f"{dockerfile}: no `ARG COMPILER=<none|the C/C++ compiler the base ships>`")
    commands = pip_install_commands(instructions)
    if len(commands) != 1:
        raise ValueError(f"{dockerfile}: expected one `pip install`, found {len(commands)}")
    tokens = commands[0]
    constraints, files, requirements, ignore = None, [], [], False
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token in ("-c", "--constraint", "-r", "--requirement"):
            path = root / tokens[i + 1]  # relative to WORKDIR /app, which holds the repository's requirements/
            if token in ("-c", "--constraint"):
                constraints = path
            else:
                files.append(path)
            i += 2
            continue
        if token == "--ignore-requires-python":
            ignore = True
        elif token.startswith("-"):
            raise ValueError(f"{dockerfile}: the checker does not know pip option {token!r}")
        else:
            requirements.append(token)
        i += 1
    if constraints is None:
        raise ValueError(f"{dockerfile}: `pip install` has no -c constraints file")
    return ImageSpec(image, dockerfile, python, glibc, constraints, files, requirements, ignore, compiler)


# --------------------------------------------------------------------------- the index and pip


def isolated_env(cache_dir: Path) -> dict[str, str]:
    """This process's environment without any pip configuration: only the public index answers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_CACHE_DIR=str(cache_dir / "pip"))
    return env


def index_files(name: str, index_url: str = INDEX_URL) -> list[dict]:
    """The files the index lists for a project (PEP 691 JSON)."""
    request = urllib.request.Request(f"{index_url}/{canonicalize_name(name)}/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)["files"]
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise IndexUnreachable(f"{index_url}: HTTP {exc.code} for {name}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise IndexUnreachable(f"{index_url}: {exc}") from exc


def index_reachable(index_url: str = INDEX_URL) -> bool:
    try:
        index_files("pip", index_url)
        return True
    except IndexUnreachable:
        return False


def _admits(requires_python: Optional[str], python: str) -> bool:
    """Does Requires-Python admit the image's Python? The Dockerfile declares major.minor and its base tag
    (python:3.11-*) carries that minor's newest patch, so a patch-level floor (soupsieve: >=3.11.5) is
    judged against a late patch; verify_image.py checks the exact running version at build time."""
    if not requires_python:
        return True
    try:
        return SpecifierSet(requires_python).contains(f"{python}.{NEWEST_PATCH}", prereleases=True)
    except InvalidSpecifier:
        return True  # pip ignores an invalid Requires-Python too


def classify_pin(spec: ImageSpec, name: str, version: str, files: list[dict]) -> tuple[str, Optional[str]]:
    """('wheel', None) when the pinned version has a wheel for the image; ('sdist', filename) when it has
    only an sdist and no platform wheels (it may build a pure wheel); ('fail', why) otherwise."""
    tags = spec.tags()
    wheels, sdists = [], []
    for f in files:
        filename = f["filename"]
        if f.get("yanked"):
            continue
        try:
            if filename.endswith(".whl"):
                _, v, _, wheel_tags = parse_wheel_filename(filename)
                if str(v) == version:
                    wheels.append((filename, {str(t) for t in wheel_tags}, f.get("requires-python")))
            elif filename.endswith((".tar.gz", ".zip")):
                _, v = parse_sdist_filename(filename)
                if str(v) == version:
                    sdists.append((filename, f.get("requires-python")))
        except ValueError:
            continue  # a file name pip would not take either
    fitting = [w for w in wheels if w[1] & tags]
    if fitting and (spec.ignore_requires_python or any(_admits(w[2], spec.python) for w in fitting)):
        return "wheel", None
    if fitting:
        return "fail", f"{name}=={version}: its wheels require Python {fitting[0][2]}, the image runs {spec.python}"
    have = ", ".join(sorted({t for w in wheels for t in w[1]})[:6]) or "none"
    target = f"cp{spec.python.replace('.', '')} on manylinux_2_{spec.glibc.split('.')[1]} x86_64"
    if sdists and not _admits(sdists[0][1], spec.python) and name not in KNOWN_PYTHON_CAPS:
        # Built anyway under --ignore-requires-python, it would be code its authors do not run on this Python.
        return "fail", f"{name}=={version}: no wheel for {target} (wheels: {have}); its sdist requires Python {sdists[0][1]}"
    if sdists:
        return "sdist", sdists[0][0]
    return "fail", f"{name}=={version}: no wheel for {target} (wheels: {have}) and no sdist"


NO_COMPILER_TOOLS = ("cc", "gcc", "g++", "c++", "clang", "clang++", "cargo", "rustc", "gfortran")


def _without_compilers(env: dict[str, str], bin_dir: Path) -> dict[str, str]:
    """An environment where every C/C++/Rust/Fortran compiler fails, as in a base image without one."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in NO_COMPILER_TOOLS:
        fake = bin_dir / tool
        fake.write_text(f"#!/bin/sh\necho '{tool}: not in this image' >&2\nexit 127\n")
        fake.chmod(0o755)
    return env | {"PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", "CC": "false", "CXX": "false",
                  "LDSHARED": "false"}


def _wheel_for(directory: Path, name: str, version: str) -> Optional[Path]:
    for path in directory.glob("*.whl"):
        wheel_name, wheel_version, _, _ = parse_wheel_filename(path.name)
        if canonicalize_name(wheel_name) == canonicalize_name(name) and str(wheel_version) == version:
            return path
    return None


def _pip_wheel(name: str, version: str, out: Path, cache_dir: Path, index_url: str,
               compilers: bool) -> tuple[Optional[Path], str]:
    env = isolated_env(cache_dir)
    if not compilers:
        env = _without_compilers(env, out / "no-compilers")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-binary", ":all:", "--no-cache-dir",
                           "--index-url", index_url, "--quiet", "-w", str(out), f"{name}=={version}"],
                          env=env, capture_output=True, text=True, timeout=900)
    wheel = _wheel_for(out, name, version)
    return (wheel if proc.returncode == 0 else None), " ".join(proc.stderr.strip().splitlines()[-2:])[-300:]


def build_sdist_wheel(spec: ImageSpec, name: str, version: str, pure_dir: Path, native_dir: Path,
                      cache_dir: Path, index_url: str = INDEX_URL) -> tuple[Optional[Path], str, bool]:
    """Build name==version from its sdist the way the image's pip would: (wheel, what happened, verified).

    Without a compiler only a pure wheel counts. With one (ARG COMPILER) a native wheel counts too, when
    this checker runs the image's Python. For another Python (a what-if) a native build cannot be judged
    here: the pin is reported unverified (a failure), and the wheel built for this Python stands in for
    it in the resolution only, so the check goes on to list the other pins. Pure wheels are cached (they
    do not depend on the machine); native ones live for this run only."""
    cached = _wheel_for(pure_dir, name, version)
    if cached:
        return cached, "cached pure wheel", True
    same_python = spec.python == "%d.%d" % sys.version_info[:2]
    native_tag = f"{spec.abi}-{spec.abi}-linux_x86_64"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        wheel, tail = _pip_wheel(name, version, out / "plain", cache_dir, index_url, compilers=False)
        if wheel is not None and all(str(t).endswith("-none-any") for t in parse_wheel_filename(wheel.name)[3]):
            pure_dir.mkdir(parents=True, exist_ok=True)
            shutil.move(str(wheel), pure_dir / wheel.name)
            return pure_dir / wheel.name, "built pure wheel", True
        if not spec.builds_native_sdists:
            return None, (f"{name}=={version}: only an sdist for this target, and it does not build into a pure wheel "
                          f"without a compiler, which the image lacks (ARG COMPILER=none): {tail}"), False
        wheel, tail = _pip_wheel(name, version, out / "native", cache_dir, index_url, compilers=True)
        if wheel is None:
            return None, f"{name}=={version}: only an sdist for this target, and it does not build: {tail}", False
        native_dir.mkdir(parents=True, exist_ok=True)
        if same_python:
            if {str(t) for t in parse_wheel_filename(wheel.name)[3]} != {native_tag}:
                return None, f"{name}=={version}: its sdist builds {wheel.name}, which the image cannot use", False
            shutil.move(str(wheel), native_dir / wheel.name)
            return native_dir / wheel.name, f"built native ({spec.compiler}) wheel", True
        dist, wheel_version, _, _ = parse_wheel_filename(wheel.name)
        stand_in = native_dir / f"{dist.replace('-', '_')}-{wheel_version}-{native_tag}.whl"
        shutil.move(str(wheel), stand_in)
        return stand_in, (f"{name}=={version}: only an sdist for this target, with native code: not verified for "
                          f"Python {spec.python} (this checker runs {sys.version.split()[0]}); build it there"), False


CULPRIT_PATTERNS = (
    re.compile(r"\(constraint\) ([A-Za-z0-9][A-Za-z0-9._-]*)=="),
    re.compile(r"No matching distribution found for ([A-Za-z0-9][A-Za-z0-9._-]*)"),
    re.compile(r"Could not find a version that satisfies the requirement ([A-Za-z0-9][A-Za-z0-9._-]*)"),
)


def culprits(stderr: str) -> list[str]:
    """The distributions pip's resolution error names."""
    names = []
    for pattern in CULPRIT_PATTERNS:
        for match in pattern.finditer(stderr):
            name = canonicalize_name(match.group(1))
            if name not in names:
                names.append(name)
    return names


def _pip_resolve(spec: ImageSpec, constraints: Path, wheel_dirs: list[Path], report: Path, cache_dir: Path,
                 index_url: str) -> subprocess.CompletedProcess:
    # Not --quiet: pip explains a conflict ("The user requested (constraint) x==1") at INFO level.
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
               "--report", str(report), "--index-url", index_url,
               "--python-version", spec.python, "--implementation", "cp", "--abi", spec.abi,
               "--only-binary=:all:"]
    for wheel_dir in wheel_dirs:
        command += ["--find-links", str(wheel_dir)]
    for platform in spec.platforms:
        command += ["--platform", platform]
    if spec.ignore_requires_python:
        command.append("--ignore-requires-python")
    command += ["-c", str(constraints)]
    for path in spec.requirement_files:
        command += ["-r", str(path)]
    command += spec.requirements
    return subprocess.run(command, env=isolated_env(cache_dir), capture_output=True, text=True, timeout=1800)


def _unreachable(stderr: str) -> bool:
    return bool(re.search(r"NewConnectionError|Failed to establish a new connection|Temporary failure in name "
                          r"resolution|ConnectTimeoutError|Max retries exceeded", stderr))


# pip before 23.3 refuses --platform/--abi without --target even with --dry-run ("Can not use any platform
# or abi specific options unless installing via '--target'"); requirements/dev.txt installs a newer one.
MIN_PIP = Version("23.3")


def require_pip() -> None:
    """Refuse to check with a pip that cannot resolve for another platform, saying which pip that is."""
    have = installed_version("pip")
    if Version(have) < MIN_PIP:
        raise RuntimeError(f"{sys.executable} has pip {have}; resolving an image's closure for its own platform "
                           f"needs pip >= {MIN_PIP} (make setup installs it)")


def check_image(spec: ImageSpec, cache_dir: Path = CACHE_DIR, index_url: str = INDEX_URL,
                log=lambda line: None) -> ImageResult:
    """Resolve the image's closure for its target; every pin that does not hold becomes a failure."""
    require_pip()
    started = time.monotonic()
    result = ImageResult(spec)
    pins = constraint_pins(spec.constraints)
    pure_dir = cache_dir / "pure-wheels"
    pure_dir.mkdir(parents=True, exist_ok=True)
    lifted: set[str] = set()
    unverified: set[str] = set()
    with tempfile.TemporaryDirectory() as tmp:
        constraints, report = Path(tmp) / "constraints.txt", Path(tmp) / "report.json"
        native_dir = Path(tmp) / "native-wheels"
        native_dir.mkdir()
        for _ in range(MAX_ROUNDS):
            # The lock minus the pins already failed, so the resolver goes on to the next one.
            lines = [line for line in spec.constraints.read_text().splitlines()
                     if not (m := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*==", line))
                     or canonicalize_name(m.group(1)) not in lifted]
            constraints.write_text("\n".join(lines) + "\n")
            proc = _pip_resolve(spec, constraints, [pure_dir, native_dir], report, cache_dir, index_url)
            if proc.returncode == 0:
                break
            output = proc.stdout + proc.stderr
            if _unreachable(output):
                raise IndexUnreachable(proc.stderr.strip().splitlines()[-1])
            progressed = False
            for name in culprits(output):
                if name in lifted or name in unverified or any(b.startswith(name + ":") for b in result.built):
                    continue
                if name not in pins:
                    result.failures[name] = f"{name}: not pinned in {spec.constraints.name}, and pip cannot resolve it"
                    continue
                kind, detail = classify_pin(spec, name, pins[name], index_files(name, index_url))
                if kind == "wheel":
                    continue  # installable; the conflict is another culprit's
                if kind == "sdist":
                    wheel, why, verified = build_sdist_wheel(spec, name, pins[name], pure_dir, native_dir, cache_dir,
                                                             index_url)
                    if wheel is not None:
                        log(f"  {name}=={pins[name]}: sdist only; {why} {wheel.name}" if verified
                            else f"  {why} (a stand-in lets the resolution go on)")
                        if verified:
                            result.built.append(f"{name}: {why}")
                        else:
                            result.failures[name] = why  # a failure, though a stand-in lets the resolution go on
                            unverified.add(name)
                        progressed = True
                        continue
                    detail = why
                result.failures[name] = detail
                lifted.add(name)
                progressed = True
            if not progressed:
                tail = "\n".join(output.strip().splitlines()[-15:])
                result.failures.setdefault("<resolver>", f"pip cannot resolve the closure:\n{tail}")
                break
        else:
            result.failures.setdefault("<resolver>", f"gave up after {MAX_ROUNDS} rounds")
        if report.exists() and "<resolver>" not in result.failures:
            _check_report(json.loads(report.read_text()), spec, pins, result, lifted | unverified)
    result.seconds = time.monotonic() - started
    return result


def _check_report(report: dict, spec: ImageSpec, pins: dict[str, str], result: ImageResult,
                  lifted: set[str]) -> None:
    """Every resolved distribution is pinned at its version and admits the image's Python (or is a known cap)."""
    for item in report["install"]:
        metadata = item["metadata"]
        name, version = canonicalize_name(metadata["name"]), metadata["version"]
        result.resolved[name] = version
        if name in lifted:
            continue  # already failed; its replacement version (or stand-in) says nothing new
        url = (item.get("download_info") or {}).get("url", "")
        if url.startswith("file:") and not any(b.startswith(name + ":") for b in result.built):
            result.built.append(f"{name}: pure wheel built from its sdist earlier (cached)")
        pin = pins.get(name)
        if pin is None:
            result.failures[name] = f"{name} {version} is in the image's closure but not pinned (drift)"
        elif pin != version:
            result.failures[name] = f"{name}: the image would install {version}, the lock pins {pin} (drift)"
        requires = metadata.get("requires_python")
        if not _admits(requires, spec.python):
            if spec.ignore_requires_python and name in KNOWN_PYTHON_CAPS:
                result.allowed_caps[name] = f"Requires-Python {requires}: {KNOWN_PYTHON_CAPS[name]}"
            else:
                result.failures.setdefault(name, f"{name} {version} requires Python {requires}, the image runs "
                                                 f"{spec.python}")


def format_result(result: ImageResult) -> list[str]:
    spec = result.spec
    head = (f"{spec.image}: Python {spec.python}, manylinux_2_{spec.glibc.split('.')[1]} x86_64, "
            f"{len(result.resolved)} distributions resolved in {result.seconds:.0f} s")
    lines = [("FAIL  " if result.failures else "PASS  ") + head]
    for name, why in sorted(result.allowed_caps.items()):
        lines.append(f"        allowed cap  {name}: {why}")
    for built in result.built:
        lines.append(f"        sdist only   {built}")
    for name, why in sorted(result.failures.items()):
        lines.append(f"        FAILING PIN  {why}")
    if result.failures:
        lines.append(f"      {len(result.failures)} failing pin(s) for {spec.image}")
    return lines


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", choices=sorted(DOCKERFILES), action="append",
                        help="check only this image (repeatable); default: all")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="the repository whose Dockerfiles and lock to read")
    parser.add_argument("--python", help="what-if: resolve for this Python instead of the Dockerfile's")
    parser.add_argument("--glibc", help="what-if: resolve for this glibc (manylinux_2_N) instead of the Dockerfile's")
    parser.add_argument("--compiler", help="what-if: the base's compiler ('none' for none) instead of the Dockerfile's")
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    parser.add_argument("--index-url", default=INDEX_URL)
    args = parser.parse_args(argv)
    failed = False
    try:
        for image in args.image or sorted(DOCKERFILES):
            try:
                spec = read_image_spec(image, args.root, args.python, args.glibc, args.compiler)
            except ValueError as exc:
                print(f"FAIL  {image}: {exc}")
                failed = True
                continue
            result = check_image(spec, args.cache_dir, args.index_url, log=lambda line: print(line, flush=True))
            print("\n".join(format_result(result)), flush=True)
            failed |= bool(result.failures)
    except IndexUnreachable as exc:
        print(f"SKIP  the package index is unreachable: {exc}")
        return 2
    print("IMAGE PINS FAILED" if failed else "IMAGE PINS HOLD")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
