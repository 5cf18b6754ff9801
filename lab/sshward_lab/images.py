"""Offline base images: debootstrap from the configured Debian mirror, then `docker import`."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from . import LabError
from .engine import docker

IMAGE_REPO = "sshward-lab"
RECIPE_LABEL = "sshward.recipe"
SUITES = ("bullseye", "bookworm", "trixie")
PACKAGES = ("systemd", "systemd-sysv", "openssh-server", "python3", "sudo", "iproute2", "procps", "iptables", "dbus")
# Bump when the recipe changes in a way the hash below cannot see.
RECIPE_VERSION = "1"
DEFAULT_MIRROR = "http://deb.debian.org/debian"


@dataclass(frozen=True)
class Recipe:
    suite: str
    mirror: str

    @property
    def tag(self) -> str:
        return f"{IMAGE_REPO}:{self.suite}"

    @property
    def digest(self) -> str:
        setup = resources.files(__package__).joinpath("image-setup.sh").read_bytes()
        material = "\0".join([RECIPE_VERSION, self.suite, self.mirror, ",".join(PACKAGES)]).encode() + setup
        return hashlib.sha256(material).hexdigest()[:16]


def configured_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror apt already uses (deb822 `URIs:` or one-line `deb URL`), not a guessed public one."""
    if os.environ.get("SSHWARD_LAB_MIRROR"):
        return os.environ["SSHWARD_LAB_MIRROR"]
    candidates = sorted(sources_dir.glob("sources.list.d/*.sources")) + [sources_dir / "sources.list"]
    candidates += sorted(sources_dir.glob("sources.list.d/*.list"))
    for path in candidates:
        try:
            text = path.read_text()
        except OSError:
            continue
        for match in re.finditer(r"^(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+)", text, re.MULTILINE):
            url = match.group(1).rstrip("/")
            if url.endswith("/debian"):
                return url
    return DEFAULT_MIRROR


def image_digest(tag: str) -> str | None:
    proc = docker("image", "inspect", "--format", f'{{{{index .Config.Labels "{RECIPE_LABEL}"}}}}', tag, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def ensure_image(suite: str, log=print) -> str:  # type: ignore[no-untyped-def]
    """Build the image for `suite` unless one with the same recipe is already there. Returns its tag."""
    if suite not in SUITES:
        raise LabError(f"unknown suite {suite!r}: choose one of {', '.join(SUITES)}")
    recipe = Recipe(suite, configured_mirror())
    if image_digest(recipe.tag) == recipe.digest:
        return recipe.tag
    _check_build_prerequisites()
    log(f"building {recipe.tag} from {recipe.mirror} (debootstrap, about a minute)")
    with tempfile.TemporaryDirectory(prefix=f"sshward-lab-{suite}-") as tmp:
        root = Path(tmp) / "root"
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                suite,
                str(root),
                recipe.mirror,
            ],
            f"debootstrap {suite}",
        )
        setup = resources.files(__package__).joinpath("image-setup.sh").read_bytes()
        (root / "tmp" / "image-setup.sh").write_bytes(setup)
        _run(["chroot", str(root), "/bin/sh", "/tmp/image-setup.sh"], f"image setup for {suite}")
        (root / "tmp" / "image-setup.sh").unlink()
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            [
                "docker",
                "import",
                "--change",
                'CMD ["/lib/systemd/systemd"]',
                "--change",
                "ENV container=docker",
                "--change",
                f"LABEL {RECIPE_LABEL}={recipe.digest}",
                "-",
                recipe.tag,
            ],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        assert tar.stdout is not None
        tar.stdout.close()
        tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise LabError(f"docker import of {recipe.tag} failed: {imported.stderr.strip()}")
    return recipe.tag


def _check_build_prerequisites() -> None:
    if os.geteuid() != 0:
        raise LabError("building the lab images needs root (debootstrap and chroot): run as root")
    if shutil.which("debootstrap") is None:
        raise LabError("debootstrap is missing: apt-get install debootstrap")


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise LabError(f"{what} failed: {' | '.join(tail)}")
