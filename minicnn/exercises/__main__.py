"""``python -m minicnn.exercises list | start NAME [DIR] | grade NAME [DIR] [--json] [--seed S] |
grade-folder FOLDER [NAME ...] [--out FILE]``; exit code 0 pass, 1 fail (or an error), 2 bad usage."""

from __future__ import annotations

import argparse
import json
import sys

from minicnn import exercises
from minicnn.exercises import classroom


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minicnn.exercises",
                                     description="Write each piece of a CNN yourself, graded.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the exercises, in the order to do them")
    start = commands.add_parser("start", help="write NAME.py into DIR: what is given, and TODOs for you")
    grade = commands.add_parser("grade", help="grade DIR/NAME.py in a subprocess, minicnn's piece blocked")
    for sub in (start, grade):
        sub.add_argument("name", choices=exercises.names(), metavar="NAME", help=", ".join(exercises.names()))
        sub.add_argument("directory", nargs="?", default=".", metavar="DIR", help="default: the current one")
    grade.add_argument("--json", action="store_true", help="print the grade as JSON: a score per case")
    folder = commands.add_parser("grade-folder", help="grade every student's files in FOLDER into one table")
    folder.add_argument("folder", metavar="FOLDER", help="one subfolder per student (or one NAME file each)")
    folder.add_argument("names", nargs="*", metavar="NAME", help="the exercises (default: the files found)")
    folder.add_argument("--out", metavar="FILE", help="write the table to FILE.csv or FILE.json")
    for sub in (grade, folder):
        sub.add_argument("--seed", type=int, help="the cases' seed (default: a new one, printed)")
        sub.add_argument("--timeout", type=float, help="seconds per submission (default: the exercise's)")
    args = parser.parse_args(argv)

    if args.command == "list":
        for name in exercises.names():
            ex = exercises.get(name)
            print(f"{name:<22} {ex.title} ({ex.docs}, about {ex.minutes} min)")
        return 0
    if args.command == "start":
        try:
            path = exercises.start(args.name, args.directory)
        except FileExistsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        ex = exercises.get(args.name)
        print(f"Wrote {path}: write {' and '.join(ex.provides)}'s TODOs (read {ex.docs}), then run\n"
              f"    python -m minicnn.exercises grade {args.name} {args.directory}")
        return 0
    seed = exercises.new_seed() if args.seed is None else args.seed
    if args.command == "grade-folder":
        return grade_folder(args, seed)
    try:
        result = exercises.grade(args.name, args.directory, seed=seed, timeout=args.timeout)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result.to_dict(), indent=1) if args.json else result)
    return 0 if result.passed else 1


def grade_folder(args: argparse.Namespace, seed: int) -> int:
    def report(row: classroom.Row) -> None:
        r = row.as_dict()
        print(f"{r['student']:<20} {r['exercise']:<22} {r['score']:>3}/{r['max_score']:<3} "
              f"{'pass' if r['passed'] else 'FAIL'}{'  ' + r['error'] if r['error'] else ''}", flush=True)

    print(f"grading {args.folder} with seed {seed} (replay with --seed {seed})")
    try:
        rows = classroom.grade_folder(args.folder, args.names, seed, args.timeout, report)
        if args.out:
            classroom.write_table(rows, args.out)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.out:
        print(f"wrote {args.out}: {len(rows)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
