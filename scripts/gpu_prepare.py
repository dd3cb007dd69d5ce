"""Prepare what travels to the GPU machine for `benchmarks.gpu`: wheels and data in the ignored folder .gpu/.

    python -m scripts.gpu_prepare            # fills .gpu/wheels and .gpu/data, prints the device call

The GPU machine (see CONTRIBUTING.md) has no package registry and its own Python 3.12 with a
newer torch. genseq runs there from the copied work tree; its other dependencies travel as wheels
for CPython 3.12 on x86-64 Linux. Packages that machine's image already holds (DEVICE_HAS) are left
out: carried copies would shadow them (PYTHONPATH comes first) and two versions of one stop the install.
Each dependency is pinned to the version installed here when there is one (the version the test
suite passes with), else the newest that fits. Data: tinyshakespeare from ../shared/data, which
does not travel by itself (only the repository does).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / ".gpu"
SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
LIMIT_MIB = 64
"""What travels to the device machine (tracked and untracked-not-ignored files plus carried paths) may not pass this."""

DEVICE_HAS = frozenset(canonicalize_name(name) for name in """
    absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs build certifi
    charset-normalizer click cloudpickle colorama contourpy coverage cycler cython einops execnet filelock
    fonttools frozenlist fsspec h11 h5py httpcore httpx huggingface-hub hypothesis idna imageio iniconfig jinja2
    joblib kiwisolver markdown markdown-it-py markupsafe matplotlib mdurl mpmath msgpack multidict networkx ninja
    numpy packaging pandas pathspec pillow pip pluggy portalocker propcache protobuf psutil pygments pyparsing
    pytest pytest-timeout pytest-xdist python-dateutil pyyaml regex requests rich safetensors scipy setuptools
    shellingham simplejson six sympy tabulate tensorboard tqdm triton typer typing-extensions typing-inspect
    urllib3 uvloop werkzeug wheel wrapt zipp torch
""".split())
"""Distributions the nvidia-h200 image holds (/work/.library/device/KINDS.md, read from a machine on 2026-11-17)."""

PLATFORM_ARGS = ["--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp", "--abi", "cp312",
                 *[arg for tag in ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
                                   "manylinux2014_x86_64", "manylinux1_x86_64") for arg in ("--platform", tag)]]
TARGET = {**default_environment(), "python_version": "3.12", "python_full_version": "3.12.3",
          "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
          "implementation_name": "cpython", "platform_python_implementation": "CPython", "os_name": "posix"}
"""Environment markers of the device's Python, for evaluating Requires-Dist lines."""


def genseq_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(line) for line in project["dependencies"]]


def pinned(requirement: Requirement) -> str:
    """`name==version` installed here when that version fits, else the requirement as written."""
    try:
        version = importlib.metadata.version(requirement.name)
    except importlib.metadata.PackageNotFoundError:
        return str(requirement).split(";")[0]
    return f"{requirement.name}=={version}" if requirement.specifier.contains(version, prereleases=True) else \
        str(requirement).split(";")[0]


def wheel_requirements(wheel: Path) -> list[Requirement]:
    """The Requires-Dist lines of a wheel that apply on the device (no extras)."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(name).decode("utf-8")
    found = []
    for line in metadata.splitlines():
        if line.startswith("Requires-Dist:"):
            requirement = Requirement(line.split(":", 1)[1].strip())
            if requirement.marker is None or requirement.marker.evaluate({**TARGET, "extra": ""}):
                found.append(requirement)
    return found


def wheel_name(wheel: Path) -> str:
    return canonicalize_name(re.split(r"-\d", wheel.name, maxsplit=1)[0])


def download(spec: str, folder: Path) -> Path:
    """One wheel for the device, without its dependencies; a pure-Python sdist is built into a wheel here."""
    before = set(folder.glob("*.whl"))
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder), *PLATFORM_ARGS, spec]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:  # no wheel published: build one (pure Python only; a compiled one would not fit)
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(folder), spec]
        built = subprocess.run(command, capture_output=True, text=True)
        if built.returncode != 0:
            raise SystemExit(f"no wheel for {spec}:\n{result.stderr}\n{built.stderr}")
    new = set(folder.glob("*.whl")) - before
    matches = new or {w for w in folder.glob("*.whl") if wheel_name(w) == canonicalize_name(Requirement(spec).name)}
    wheel = max(matches, key=lambda w: w.stat().st_mtime)
    if not (wheel.name.endswith("-none-any.whl") or "cp312" in wheel.name or "abi3" in wheel.name):
        raise SystemExit(f"{wheel.name} will not install on CPython 3.12")
    return wheel


def collect(folder: Path) -> list[Path]:
    """Wheels for genseq's dependencies and theirs, stopping at what the device holds."""
    queue, seen, wheels = [r for r in genseq_requirements() if canonicalize_name(r.name) != "torch"], set(), []
    while queue:
        requirement = queue.pop(0)
        name = canonicalize_name(requirement.name)
        if name in seen or name in DEVICE_HAS:
            continue
        seen.add(name)
        wheel = download(pinned(requirement), folder)
        print(f"  {wheel.name} ({wheel.stat().st_size / 2**20:.1f} MiB)")
        wheels.append(wheel)
        queue.extend(wheel_requirements(wheel))
    return wheels


def travelling_mib() -> float:
    """MiB of what a device call sends: tracked and untracked-not-ignored files, plus .gpu/."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.split(b"\0")
    files = [ROOT / name.decode() for name in listed if name]
    files += [p for p in FOLDER.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files if p.is_file()) / 2**20


DEVICE_COMMAND = "bash scripts/gpu_device.sh"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHAKESPEARE, help="text for the benchmarks (default: %(default)s)")
    args = parser.parse_args()
    ignored = subprocess.run(["git", "check-ignore", "-q", ".gpu/wheels"], cwd=ROOT).returncode == 0
    if not ignored:
        raise SystemExit(".gpu/ is not ignored by git (.gitignore lists /.gpu/); only ignored paths can be carried")
    wheels_dir = FOLDER / "wheels"
    shutil.rmtree(wheels_dir, ignore_errors=True)  # one version of each, always
    wheels_dir.mkdir(parents=True)
    print(f"wheels for CPython 3.12 into {wheels_dir}:")
    wheels = collect(wheels_dir)
    for stray in set(wheels_dir.glob("*.whl")) - set(wheels):
        stray.unlink()
    data_dir = FOLDER / "data"
    data_dir.mkdir(exist_ok=True)
    if not args.data.is_file():
        raise SystemExit(f"{args.data}: no such file; give --data")
    shutil.copyfile(args.data, data_dir / "tinyshakespeare.txt")
    size = travelling_mib()
    print(f"\n{len(wheels)} wheels, {sum(w.stat().st_size for w in wheels) / 2**20:.1f} MiB; "
          f"the whole call sends {size:.1f} MiB (limit {LIMIT_MIB})")
    if size > LIMIT_MIB - 2:
        raise SystemExit("too much would travel: remove large untracked files from the work tree first")
    print("\nthe device call (one run, about 8 minutes on the GPU):")
    print(f'  run(command="{DEVICE_COMMAND}", carry=[".gpu"], timeout_s=560)')


if __name__ == "__main__":
    main()
