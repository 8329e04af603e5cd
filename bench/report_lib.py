"""Shared by the bench/*_report.py scripts: arguments, run.txt, numbers."""
import os
import sys


def parse_args(doc):
    """[--check] RUN_DIR from the command line: (check, run_dir); else the doc."""
    args = sys.argv[1:]
    check = "--check" in args
    args = [a for a in args if a != "--check"]
    if len(args) != 1:
        sys.exit(doc)
    return check, args[0]


def kv(path):
    """A file of `key value` lines (run.txt, events) as a dict of strings."""
    d = {}
    for line in open(path):
        k, _, v = line.rstrip("\n").partition(" ")
        d[k] = v
    return d


def fmt(x, digits):
    """A number with thousands separators, or n/a."""
    return "n/a" if x is None else f"{x:,.{digits}f}"


def write_markdown(run, name, lines):
    """Writes the report's lines to RUN/NAME and standard output."""
    text = "\n".join(lines) + "\n"
    with open(os.path.join(run, name), "w") as f:
        f.write(text)
    sys.stdout.write(text)
