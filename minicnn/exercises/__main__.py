"""``python -m minicnn.exercises list | start NAME [DIR] | grade NAME [DIR]``; exit code 0 pass, 1 fail."""

from __future__ import annotations

import argparse
import sys

from minicnn import exercises


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minicnn.exercises",
                                     description="Write each backward pass of minicnn yourself, graded.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the exercises")
    for command, text in (("start", "write NAME.py into DIR: the forward pass written, the backward to do"),
                          ("grade", "grade DIR/NAME.py: gradcheck and targeted cases, reference "
                                     "implementation")):
        sub = commands.add_parser(command, help=text)
        sub.add_argument("name", choices=exercises.names(), metavar="NAME", help=", ".join(exercises.names()))
        sub.add_argument("directory", nargs="?", default=".", metavar="DIR", help="default: the current one")
    args = parser.parse_args(argv)

    if args.command == "list":
        for name in exercises.names():
            ex = exercises.get(name)
            print(f"{name:<22} {ex.title} ({ex.docs})")
        return 0
    if args.command == "start":
        try:
            path = exercises.start(args.name, args.directory)
        except FileExistsError as exc:
            print(exc, file=sys.stderr)
            return 1
        ex = exercises.get(args.name)
        print(f"Wrote {path}: write {' and '.join(ex.provides)}'s TODOs (read {ex.docs}), then run\n"
              f"    python -m minicnn.exercises grade {args.name} {args.directory}")
        return 0
    try:
        grade = exercises.grade(args.name, args.directory)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(grade)
    return 0 if grade.passed else 1


if __name__ == "__main__":
    sys.exit(main())
