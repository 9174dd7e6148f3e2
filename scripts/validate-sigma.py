#!/usr/bin/env python3
"""Validates Sigma rule files with pySigma, offline.

Usage: validate-sigma.py FILE.yml [FILE.yml ...]

Each file is parsed on its own (its correlations must resolve within the file),
then all files together (ids and titles must be unique across the set). Every
pySigma validator runs except the ATT&CK and D3FEND tag validators, which
download their data at run time (standards.md section 4). Prints one line per
problem and exits 1 if there is any; prints "N passed, 0 failed" otherwise.
"""
import sys
from pathlib import Path

try:
    from sigma.collection import SigmaCollection
    from sigma.validators.core import validators as core_validators
    from sigma.validation import SigmaValidator
except ImportError as error:  # the venv is missing pySigma
    print(f"pySigma is not installed in this Python ({sys.executable}): {error}", file=sys.stderr)
    sys.exit(2)

EXCLUDED = {"attacktag", "d3_fendtag"}


def problems_in(collection, where):
    """Parse errors of each rule, then the validators' issues for the rules that parsed."""
    found = []
    validator = SigmaValidator([v for k, v in core_validators.items() if k not in EXCLUDED])
    issues = []
    for rule in collection.rules:
        errors = getattr(rule, "errors", []) or []
        for error in errors:
            found.append(f"{where}: rule {getattr(rule, 'title', '?')!r}: {type(error).__name__}: {error}")
        if errors:
            continue
        try:
            issues += validator.validate_rule(rule)
        except Exception as error:  # a validator that cannot handle the rule is a problem too
            found.append(f"{where}: rule {getattr(rule, 'title', '?')!r}: validator failed: {type(error).__name__}: {error}")
    issues += validator.finalize()
    for issue in issues:
        titles = ", ".join(repr(getattr(r, "title", "?")) for r in issue.rules)
        found.append(f"{where}: {type(issue).__name__} ({issue.severity.name}) in {titles}: {issue.description}")
    return found


def main(paths):
    if not paths:
        print("usage: validate-sigma.py FILE.yml [FILE.yml ...]", file=sys.stderr)
        return 2
    problems = []
    texts = []
    for path in paths:
        text = Path(path).read_text(encoding="utf-8")
        texts.append(text)
        try:
            collection = SigmaCollection.from_yaml(text, collect_errors=True)
            collection.resolve_rule_references()
        except Exception as error:  # pySigma raises SigmaError subclasses on malformed rules
            problems.append(f"{path}: {type(error).__name__}: {error}")
            continue
        if not collection.rules:
            problems.append(f"{path}: no rule")
        problems += problems_in(collection, path)
    if not problems:
        # Across files: ids, names and titles must be unique in the whole set.
        try:
            combined = SigmaCollection.merge([SigmaCollection.from_yaml(t, collect_errors=True) for t in texts])
            combined.resolve_rule_references()
            problems += problems_in(combined, "all files together")
        except Exception as error:
            problems.append(f"all files together: {type(error).__name__}: {error}")
    for p in problems:
        print(p)
    passed = len(paths) if not problems else 0
    print(f"{passed} passed, {len(paths) - passed} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
