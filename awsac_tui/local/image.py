"""VM images of the local cloud: the AWS recipe (debootstrap, ami/provision.sh --root, the disk).

``baked`` is the awsac image (agent and boot service, as Packer makes it on AWS); ``stock`` is the
same distribution with cloud-init and boto3 but no agent (sessions with ``image_mode = "stock"``).
Both are cached in a directory shared by every state dir, keyed by a hash of what goes into them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from awsac_agent.errors import AwsacError

REPO = Path(__file__).resolve().parents[2]
PROVISION = REPO / "ami" / "provision.sh"
UNIT = REPO / "ami" / "awsac-autorun.service"
AGENT_PACKAGE = REPO / "agent" / "awsac_agent"

SUITE = os.environ.get("AWSAC_DEBOOTSTRAP_SUITE", "bookworm")
MIRROR = os.environ.get("AWSAC_DEBOOTSTRAP_MIRROR", "http://deb.debian.org/debian")
# The distribution of every VM image (debootstrap --variant=minbase --include=...): a kernel for
# direct boot, systemd and udev, cloud-init (python3 comes with it) and the DHCP client it uses,
# e2fsprogs and util-linux (mount, findmnt), bzip2 (job scripts make results.tar.bz2 with
# `tar cj`, as on the paper's images). debootstrap does not resolve the virtual package
# python3-cryptography needs, hence python3-cffi-backend. boto3 is not here: provision.sh
# installs it, as on AWS.
BASE_PACKAGES = (
    "systemd-sysv",
    "udev",
    "linux-image-cloud-amd64",
    "python3",
    "python3-cffi-backend",
    "cloud-init",
    "ifupdown",
    "isc-dhcp-client",
    "netbase",
    "e2fsprogs",
    "iproute2",
    "bzip2",
)
KINDS = ("baked", "stock")
DISK_SIZE = "2G"  # sparse; the instance's root file system (jobs write their results there)
RECIPE_VERSION = "1"  # bump when this module changes what an image holds

CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}

Say = Callable[[str], None]


class ImageError(AwsacError):
    """A VM image could not be built or is missing."""


@dataclass(frozen=True)
class VmImage:
    """One built image: its root disk (raw ext4) and the kernel and initrd for direct boot."""

    kind: str
    key: str
    directory: Path

    @property
    def disk(self) -> Path:
        return self.directory / "disk.raw"

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"

    def manifest(self) -> dict[str, object]:
        try:
            return json.loads((self.directory / "image.json").read_text())
        except (OSError, ValueError):
            return {}


def cache_dir() -> Path:
    """Where images are kept: $AWSAC_CACHE_DIR, else $XDG_CACHE_HOME/awsac, else ~/.cache/awsac.

    Shared by every state dir, so tests and CI build the images once per machine.
    """
    explicit = os.environ.get("AWSAC_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "awsac"


def vm_dir() -> Path:
    return cache_dir() / "vm"


# ---- keys: what goes into each image ---------------------------------------------------------


def _hash(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()[:16]


def rootfs_key() -> str:
    """The debootstrap root's key: suite and package list (not the mirror: same content)."""
    recipe = {"suite": SUITE, "variant": "minbase", "packages": sorted(BASE_PACKAGES)}
    return _hash(json.dumps(recipe, sort_keys=True).encode())


def _tree_bytes(root: Path) -> list[bytes]:
    out: list[bytes] = []
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts or path.suffix == ".pyc" or not path.is_file():
            continue
        out.append(str(path.relative_to(root)).encode())
        out.append(path.read_bytes())
    return out


def image_key(kind: str) -> str:
    """The image's key: the root's key, provision.sh, and for ``baked`` the unit and the agent."""
    if kind not in KINDS:
        raise ImageError(f"no VM image kind {kind!r} (use one of {', '.join(KINDS)})")
    _require_sources()
    parts = [kind.encode(), RECIPE_VERSION.encode(), rootfs_key().encode(), PROVISION.read_bytes()]
    if kind == "baked":
        parts += [UNIT.read_bytes(), *_tree_bytes(AGENT_PACKAGE)]
    return _hash(*parts)


def _require_sources() -> None:
    for path in (PROVISION, UNIT, AGENT_PACKAGE / "__init__.py"):
        if not path.is_file():
            raise ImageError(
                f"{path} is missing: VM images are built from a source checkout of awsac "
                "(ami/ and agent/); run from a clone of the repository"
            )


# ---- finding and building ------------------------------------------------------------------------


def rootfs_path() -> Path:
    return vm_dir() / f"rootfs-{SUITE}-{rootfs_key()}"


def image_path(kind: str) -> Path:
    return vm_dir() / f"{kind}-{image_key(kind)}"


def find_image(kind: str) -> VmImage | None:
    """The current image of ``kind`` when it is built (None when it must be built first)."""
    directory = image_path(kind)
    image = VmImage(kind, directory.name.rsplit("-", 1)[-1], directory)
    if (directory / "image.json").is_file() and image.disk.is_file() and image.kernel.is_file():
        return image
    return None


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """One image build at a time on this machine (every state dir, every test worker)."""
    vm_dir().mkdir(parents=True, exist_ok=True)
    with (vm_dir() / "build.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(command: list[str], what: str, timeout: float, log: Path) -> None:
    with log.open("ab") as out:
        out.write(f"$ {' '.join(command)}\n".encode())
        out.flush()
        try:
            proc = subprocess.run(
                command,
                env=CLEAN_ENV,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
        except FileNotFoundError as exc:
            raise ImageError(
                f"{what}: {command[0]} is not installed (apt-get install {command[0]})"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise ImageError(f"{what}: no end after {timeout:.0f} s; see {log}") from exc
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise ImageError(f"{what} failed (exit {proc.returncode}); see {log}:\n{tail}")


def _check_root() -> None:
    if os.geteuid() != 0:
        raise ImageError(
            "building VM images needs root (debootstrap and chroot); run "
            "`sudo awsac local image build` once, the images are then cached for every user "
            "of this cache dir"
        )


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _prune(prefix: str, current: str) -> None:
    """Remove older builds of the same name (another key) so the cache does not grow."""
    for old in vm_dir().glob(f"{prefix}-*"):
        if not old.name.startswith(current):
            _remove(old)


def ensure_rootfs(say: Say = print) -> Path:
    """The cached debootstrap root (built once per machine and package list: about 4 min)."""
    target = rootfs_path()
    if (target / ".complete").is_file():
        return target
    _check_root()
    with _build_lock():
        if (target / ".complete").is_file():
            return target
        staging = vm_dir() / f".staging-{target.name}"
        _remove(staging)
        log = vm_dir() / f"{target.name}.log"
        _remove(log)
        say(f"debootstrap {SUITE} from {MIRROR} into {target} (about 4 min, once per machine)")
        started = time.monotonic()
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                SUITE,
                str(staging),
                MIRROR,
            ],
            f"debootstrap {SUITE}",
            1800,
            log,
        )
        took = time.monotonic() - started
        (staging / ".complete").write_text(json.dumps({"seconds": round(took, 1)}) + "\n")
        _prune(f"rootfs-{SUITE}", target.name)
        os.replace(staging, target)
        say(f"debootstrap took {took:.0f} s")
    return target


def copy_rootfs(dest: Path) -> Path:
    """A private copy of the cached root at ``dest`` (for provisioning or a test chroot)."""
    source = ensure_rootfs()
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove(dest)
    subprocess.run(
        ["cp", "-a", "--reflink=auto", str(source), str(dest)], check=True, env=CLEAN_ENV
    )
    _remove(dest / ".complete")
    return dest


def _boot_file(root: Path, pattern: str) -> Path:
    found = sorted((root / "boot").glob(pattern))
    if not found:
        raise ImageError(f"no {pattern} in {root / 'boot'} (is linux-image-cloud-amd64 installed?)")
    return found[-1]


def build_image(kind: str, say: Say = print, force: bool = False) -> VmImage:
    """Build (or find) the image of ``kind``: root copy, provision.sh --root, kernel, disk."""
    existing = find_image(kind)
    if existing is not None and not force:
        return existing
    _check_root()
    ensure_rootfs(say)
    with _build_lock():
        existing = find_image(kind)
        if existing is not None and not force:
            return existing
        target = image_path(kind)
        staging = vm_dir() / f".staging-{target.name}"
        _remove(staging)
        staging.mkdir(parents=True)
        log = staging / "build.log"
        started = time.monotonic()
        root = copy_rootfs(staging / "root")
        args = ["sh", str(PROVISION), "--source", str(REPO), "--root", str(root)]
        if kind == "stock":
            args.append("--no-agent")
        say(f"{kind} image: {' '.join(args[1:])}")
        _run(args, f"provision.sh for the {kind} image", 900, log)
        shutil.copy2(_boot_file(root, "vmlinuz-*"), staging / "vmlinuz")
        shutil.copy2(_boot_file(root, "initrd.img-*"), staging / "initrd.img")
        say(f"{kind} image: mkfs.ext4 -d (the root disk, {DISK_SIZE} sparse)")
        _run(
            [
                "mkfs.ext4",
                "-q",
                "-F",
                "-L",
                "awsac-root",
                "-d",
                str(root),
                str(staging / "disk.raw"),
                DISK_SIZE,
            ],
            f"mkfs.ext4 for the {kind} image",
            600,
            log,
        )
        _remove(root)
        took = time.monotonic() - started
        manifest = {
            "kind": kind,
            "key": image_key(kind),
            "suite": SUITE,
            "rootfs": rootfs_path().name,
            "build_seconds": round(took, 1),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (staging / "image.json").write_text(json.dumps(manifest, indent=2) + "\n")
        _prune(kind, target.name)
        os.replace(staging, target)
        say(f"{kind} image built in {took:.0f} s: {target}")
    image = find_image(kind)
    assert image is not None
    return image


def ensure_images(say: Say = print, force: bool = False) -> dict[str, VmImage]:
    """Both images (built when missing or out of date)."""
    return {kind: build_image(kind, say, force) for kind in KINDS}
