#!/usr/bin/env python3
"""Measure a unified diff: per-file added/removed lines and flags worth a look.

Usage: diff_stats.py [--text] [DIFF_FILE]   (reads stdin without DIFF_FILE)
Prints JSON (default) or a short text summary. Standard library only.
"""

import json
import re
import sys

FLAGS = [
    ("merge-marker", re.compile(r"^(<<<<<<<|=======$|>>>>>>>)")),
    ("debug-output", re.compile(r"\b(console\.log|e?println!|dbg!|pprint|print|System\.out\.print\w*|fmt\.Print\w*|var_dump)\s*\(|\bdebugger\b")),
    ("possible-secret", re.compile(
        r"(?i)(api[_-]?key|secret|password|passwd|token|private[_-]?key)\s*[:=]\s*['\"][^'\"\s]{8,}['\"]"
        r"|AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY-----|gh[pousr]_[A-Za-z0-9]{30,}|xox[baprs]-[A-Za-z0-9-]{10,}")),
    ("todo", re.compile(r"\b(TODO|FIXME|XXX|HACK)\b")),
    ("disabled-test", re.compile(r"#\[ignore\]|@(pytest\.mark\.skip|unittest\.skip|Ignore|Disabled)\b|\b(it|describe|test)\.skip\(|\bxit\(")),
]
LARGE_FILE = 500
TEST_PATH = re.compile(r"(^|/)(tests?|__tests__|spec)(/|$)|(_test|_spec|\.test|\.spec)\.[a-z]+$|(^|/)test_[^/]+$")


def parse(lines):
    """Yield one dict per file of the diff."""
    current = None
    new_line = 0
    for raw in lines:
        line = raw.rstrip("\n")
        if line.startswith("diff --git "):
            if current:
                yield current
            parts = line.split(" b/", 1)
            current = {"file": parts[1] if len(parts) == 2 else line[11:], "added": 0, "removed": 0, "flags": []}
            continue
        if current is None and line.startswith("--- "):
            current = {"file": "", "added": 0, "removed": 0, "flags": []}
        if current is None:
            continue
        if line.startswith("+++ "):
            name = line[4:].split("\t")[0]
            if name != "/dev/null":
                current["file"] = name[2:] if name.startswith("b/") else name
            continue
        if line.startswith("--- "):
            continue
        hunk = re.match(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@", line)
        if hunk:
            new_line = int(hunk.group(1))
            continue
        if line.startswith("+"):
            current["added"] += 1
            text = line[1:]
            for kind, pattern in FLAGS:
                if pattern.search(text):
                    current["flags"].append({"line": new_line, "kind": kind, "text": text.strip()[:200]})
            new_line += 1
        elif line.startswith("-"):
            current["removed"] += 1
        elif line.startswith(" "):
            new_line += 1
    if current:
        yield current


def summarize(lines):
    files = []
    flags = []
    for f in parse(lines):
        f["test"] = bool(TEST_PATH.search(f["file"]))
        if f["added"] > LARGE_FILE:
            f["flags"].append({"line": 0, "kind": "large-file", "text": f"{f['added']} lines added"})
        for flag in f.pop("flags"):
            flags.append({"file": f["file"], **flag})
        files.append(f)
    return {
        "files": files,
        "totals": {
            "files": len(files),
            "added": sum(f["added"] for f in files),
            "removed": sum(f["removed"] for f in files),
            "test_files": sum(1 for f in files if f["test"]),
        },
        "flags": flags,
    }


def text(summary):
    t = summary["totals"]
    out = [f"{t['files']} file(s), +{t['added']} -{t['removed']}, {t['test_files']} test file(s)"]
    for f in summary["files"]:
        out.append(f"  {f['file']}: +{f['added']} -{f['removed']}{' (test)' if f['test'] else ''}")
    for flag in summary["flags"]:
        out.append(f"  ! {flag['kind']} {flag['file']}:{flag['line']}: {flag['text']}")
    return "\n".join(out)


def main(argv):
    as_text = "--text" in argv
    args = [a for a in argv if not a.startswith("--")]
    if args:
        with open(args[0], encoding="utf-8", errors="replace") as f:
            summary = summarize(f)
    else:
        summary = summarize(sys.stdin)
    print(text(summary) if as_text else json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
