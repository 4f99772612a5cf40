#!/usr/bin/env python3
"""Draft release notes from git history, grouped by Conventional Commit type.

Usage: release_notes.py [--repo DIR] [--from REF] [--to REF] [--version NAME] [--json]
Standard library only; needs git on PATH.
"""

import argparse
import json
import re
import subprocess
import sys

SECTIONS = [
    ("breaking", "Breaking changes"),
    ("feat", "Features"),
    ("fix", "Fixes"),
    ("perf", "Performance"),
    ("docs", "Documentation"),
    ("other", "Other changes"),
]
HEADER = re.compile(r"^(?P<type>[a-zA-Z]+)(?:\((?P<scope>[^)]*)\))?(?P<bang>!)?:\s*(?P<subject>.+)$")
PR = re.compile(r"\s*\(#(\d+)\)\s*$")
SEP = "\x1e"
FIELD = "\x1f"


def git(repo, *args):
    done = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def latest_tag(repo, to):
    done = subprocess.run(["git", "-C", repo, "describe", "--tags", "--abbrev=0", to], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def commits(repo, start, end):
    span = f"{start}..{end}" if start else end
    out = git(repo, "log", "--no-merges", f"--format=%H{FIELD}%an{FIELD}%s{FIELD}%b{SEP}", span)
    for record in out.split(SEP):
        record = record.strip("\n")
        if not record:
            continue
        sha, author, subject, body = (record.split(FIELD) + ["", "", ""])[:4]
        yield {"sha": sha[:12], "author": author, "subject": subject.strip(), "body": body.strip()}


def classify(commit):
    entry = dict(commit)
    match = HEADER.match(commit["subject"])
    subject = commit["subject"]
    kind = "other"
    scope = None
    breaking = "BREAKING CHANGE:" in commit["body"] or "BREAKING-CHANGE:" in commit["body"]
    if match:
        kind = match.group("type").lower()
        scope = match.group("scope")
        subject = match.group("subject")
        breaking = breaking or bool(match.group("bang"))
    pr = PR.search(subject)
    entry["pr"] = int(pr.group(1)) if pr else None
    entry["subject"] = PR.sub("", subject)
    entry["scope"] = scope
    entry["type"] = kind
    if breaking:
        return "breaking", entry
    if kind in ("feat", "fix", "perf", "docs"):
        return kind, entry
    return "other", entry


def group(items):
    groups = {key: [] for key, _ in SECTIONS}
    for commit in items:
        section, entry = classify(commit)
        groups[section].append(entry)
    return groups


def markdown(groups, title):
    out = [f"# {title}", ""]
    for key, heading in SECTIONS:
        entries = groups[key]
        if not entries:
            continue
        out += [f"## {heading}", ""]
        for e in entries:
            scope = f"**{e['scope']}**: " if e["scope"] else ""
            pr = f" (#{e['pr']})" if e["pr"] else ""
            out.append(f"- {scope}{e['subject']}{pr} — {e['author']} ({e['sha'][:7]})")
        out.append("")
    if len(out) == 2:
        out += ["No changes.", ""]
    return "\n".join(out)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", default=".")
    p.add_argument("--from", dest="start")
    p.add_argument("--to", default="HEAD")
    p.add_argument("--version")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    start = a.start or latest_tag(a.repo, a.to)
    groups = group(commits(a.repo, start, a.to))
    if a.json:
        print(json.dumps({"from": start, "to": a.to, "groups": groups}, indent=2))
    else:
        since = f" (since {start})" if start else ""
        print(markdown(groups, f"{a.version or 'Release notes'}{since}"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
