"""``make images``: build every image family with whichever builder exists.

    python -m pipelines.image_build [--family base ...] [--builder docker|podman|buildah]
                               [--base-image IMAGE] [--ca-bundle FILE] [--dry-run]

Tags come from the same ``QUBEFLOW_IMAGE_REGISTRY``/``QUBEFLOW_IMAGE_TAG`` the compiled
pipeline uses (the Makefile's ``REGISTRY``/``TAG``), so built images and compiled YAML match.
The quantum family images are built on the base image just built.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from components.image_refs import BASE_IMAGE, extra_image

ROOT = Path(__file__).resolve().parents[1]
BASE_DOCKERFILE = "images/base/Dockerfile"
#: One parametrised Dockerfile for every quantum image (build arg QUBEFLOW_EXTRA).
QUANTUM_DOCKERFILE = "images/quantum/Dockerfile"
BUILDERS = ("docker", "podman", "buildah")
#: Where a CA bundle is mounted during the build (pip reads PIP_CERT).
CA_MOUNT = "/run/qubeflow-ca.crt"


@dataclass(frozen=True)
class BuildPlan:
    family: str
    ref: str
    command: list[str]


def image_families() -> list[str]:
    """ "base", the pip extra of every registered backend family, then the KServe serving
    image (built in this order: the others start from base)."""
    from components.image_refs import SERVING_EXTRA
    from components.quantum.backends import image_extras

    return ["base", *image_extras(), SERVING_EXTRA]


def dockerfile(family: str) -> str:
    return BASE_DOCKERFILE if family == "base" else QUANTUM_DOCKERFILE


def detect_builder() -> str:
    """docker if its daemon answers, else podman, else buildah."""
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    ):
        return "docker"
    for name in ("podman", "buildah"):
        if shutil.which(name):
            return name
    raise SystemExit(
        "make images: no image builder found (docker with a running daemon, "
        "podman or buildah); see images/README.md"
    )


def _git_commit() -> str:
    from components.registry.lineage import git_commit

    return git_commit(ROOT)


def plan(
    builder: str,
    families: list[str],
    *,
    base_image: str | None = None,
    ca_bundle: str | None = None,
) -> list[BuildPlan]:
    args = [
        "--build-arg",
        f"GIT_COMMIT={_git_commit()}",
        "--build-arg",
        f"QUBEFLOW_BASE_IMAGE={BASE_IMAGE}",
    ]
    if base_image:
        args += ["--build-arg", f"BASE_IMAGE={base_image}"]
    if ca_bundle:
        args += [
            "-v",
            f"{Path(ca_bundle).resolve()}:{CA_MOUNT}:ro",
            "--build-arg",
            f"PIP_CERT={CA_MOUNT}",
        ]
    if builder == "buildah":
        head = [
            "buildah",
            "--storage-driver",
            os.environ.get("BUILDAH_STORAGE_DRIVER", "vfs"),
            "bud",
            "--isolation",
            os.environ.get("BUILDAH_ISOLATION", "chroot"),
        ]
    else:
        head = [builder, "build"]
    out = []
    for family in [f for f in image_families() if f in families]:
        ref = extra_image(family)
        extra = [] if family == "base" else ["--build-arg", f"QUBEFLOW_EXTRA={family}"]
        out.append(
            BuildPlan(family, ref, [*head, "-f", dockerfile(family), "-t", ref, *args, *extra, "."])
        )
    return out


#: The local OS/Python base ``--bootstrap-base`` builds when no image registry is reachable.
BOOTSTRAP_REF = "localhost/qubeflow-os:bookworm"
BOOTSTRAP_PACKAGES = "python3,python3-venv,ca-certificates"


def bootstrap_base(
    ref: str = BOOTSTRAP_REF,
    mirror: str = "http://deb.debian.org/debian",
) -> str:
    """Debian bookworm (minbase + Python 3.11) from ``debootstrap``, committed with buildah:
    a base image made from the Debian archive alone (as root, with debootstrap and buildah)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="qubeflow-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={BOOTSTRAP_PACKAGES}",
                "bookworm",
                str(rootfs),
                mirror,
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                "rm",
                "-rf",
                str(rootfs / "var/cache/apt/archives"),
                str(rootfs / "var/lib/apt/lists"),
            ],
            check=True,
        )
        store = ["buildah", "--storage-driver", os.environ.get("BUILDAH_STORAGE_DRIVER", "vfs")]
        container = subprocess.run(
            [*store, "from", "scratch"], check=True, capture_output=True, text=True
        ).stdout.strip()
        try:
            subprocess.run(
                [*store, "add", container, f"{rootfs}/", "/"], check=True, capture_output=True
            )
            subprocess.run([*store, "commit", container, ref], check=True, capture_output=True)
        finally:
            subprocess.run([*store, "rm", container], capture_output=True)
    return ref


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make images",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--family",
        action="append",
        choices=image_families(),
        help="build only these (repeatable; default all)",
    )
    parser.add_argument("--builder", choices=BUILDERS, help="default: the first that works")
    parser.add_argument("--base-image", help="OS/Python base, e.g. an internal mirror")
    parser.add_argument("--ca-bundle", help="CA bundle for pip inside the build")
    parser.add_argument(
        "--bootstrap-base",
        action="store_true",
        help=f"no registry reachable: build {BOOTSTRAP_REF} with debootstrap "
        "and use it as --base-image (buildah, as root)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args(argv)
    builder = args.builder or ("docker" if args.dry_run else detect_builder())
    base_image = args.base_image
    if args.bootstrap_base and not args.dry_run:
        print(f"# bootstrapping {BOOTSTRAP_REF} with debootstrap", flush=True)
        base_image = bootstrap_base()
    for step in plan(
        builder, args.family or image_families(), base_image=base_image, ca_bundle=args.ca_bundle
    ):
        print(f"# {step.family}: {step.ref}\n{' '.join(step.command)}", flush=True)
        if not args.dry_run:
            subprocess.run(step.command, cwd=ROOT, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
