"""sshward-lab: the container lab the tests and the README's demo run against.

sshward-lab engine                 start the Docker engine (install docker.io if missing)
sshward-lab images [SUITE...]      build the offline base images (cached by recipe)
sshward-lab up [TARGET...]         start targets (SUITE or NAME=SUITE), write inventories
sshward-lab adopt CONTAINER...     provision containers created elsewhere (molecule)
sshward-lab status                 show the targets and inventory paths
sshward-lab down                   remove everything this lab created
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import LabError
from .engine import ensure_engine
from .images import SUITES, ensure_image
from .lab import Lab, default_state_dir


def _log(msg: str) -> None:
    print(f"sshward-lab: {msg}", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sshward-lab", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", type=Path, default=None, help="state directory (default: $SSHWARD_LAB_DIR or .lab)")
    parser.add_argument("--lab", default="lab", help="lab name, to run several labs side by side (default: lab)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("engine", help="start the Docker engine")
    images = sub.add_parser("images", help="build base images")
    images.add_argument("suites", nargs="*", default=list(SUITES), metavar="SUITE")
    up = sub.add_parser("up", help="start lab targets")
    up.add_argument("targets", nargs="*", default=["bookworm"], metavar="TARGET")
    adopt = sub.add_parser("adopt", help="provision existing containers as targets")
    adopt.add_argument("containers", nargs="+", metavar="CONTAINER")
    sub.add_parser("status", help="show targets")
    sub.add_parser("down", help="remove the lab")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except LabError as exc:
        print(f"sshward-lab: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command in ("engine", "images", "up", "adopt", "down"):
        _log(ensure_engine())
    lab = Lab(args.dir or default_state_dir(), args.lab)
    if args.command == "images":
        for suite in args.suites:
            _log(f"image ready: {ensure_image(suite, _log)}")
    elif args.command in ("up", "adopt"):
        targets = lab.up(args.targets, _log) if args.command == "up" else lab.adopt(args.containers)
        for t in targets:
            print(f"{t.name}\t{t.suite}\t{t.address}\t{t.container}")
        _log(f"ansible inventory: {lab.dir / 'inventory.ini'}")
        _log(f"pyinfra inventory: {lab.dir / 'inventory.py'}")
    elif args.command == "status":
        for t in lab.targets():
            print(f"{t.name}\t{t.suite}\t{t.address}\t{t.container}")
    elif args.command == "down":
        removed = lab.down()
        _log(f"removed {len(removed)} container(s)/network(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
