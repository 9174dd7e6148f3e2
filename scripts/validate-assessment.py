#!/usr/bin/env python3
"""Validates `menshen assess --format json` output against docs/assessment.schema.json.

    scripts/validate-assessment.py REPORT.json [SCHEMA.json]

JSON Schema draft 2020-12 with `jsonschema` (formats checked), plus what the
schema cannot say: each of the 36 principles appears exactly once, each
pillar once, and the pillar of each principle and roadmap item matches the
principle id's first digit. Prints "valid" or one error per line; exit status
0 when valid, 1 when not, 2 on a usage error. Needs `jsonschema` (scripts/test
installs it in .venv-test).
"""
import json
import pathlib
import sys

MAX_BYTES = 64 * 1024 * 1024
PILLARS = ["identity", "device", "network", "application", "data"]


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        from jsonschema import Draft202012Validator, FormatChecker
    except ImportError as e:
        print(f"validate-assessment: {e} (install jsonschema)", file=sys.stderr)
        return 2
    schema_path = pathlib.Path(sys.argv[2]) if len(sys.argv) == 3 else \
        pathlib.Path(__file__).resolve().parent.parent / "docs" / "assessment.schema.json"
    raw = pathlib.Path(sys.argv[1]).read_bytes()
    if len(raw) > MAX_BYTES:
        print(f"{sys.argv[1]}: larger than {MAX_BYTES} bytes")
        return 1
    try:
        document = json.loads(raw)
    except ValueError as e:
        print(f"{sys.argv[1]}: not JSON: {e}")
        return 1
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    errors = [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
              for e in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))]
    if not errors:
        ids = [p["principleID"] for p in document["principles"]]
        if len(set(ids)) != len(ids):
            errors.append("principles: a principle appears more than once")
        if sorted(p["pillar"] for p in document["pillars"]) != sorted(PILLARS):
            errors.append("pillars: each of the five pillars must appear once")
        for where, items in (("principles", document["principles"]), ("roadmap", document["roadmap"])):
            for i, item in enumerate(items):
                if PILLARS[int(item["principleID"][0]) - 1] != item["pillar"]:
                    errors.append(f"{where}/{i}: principle {item['principleID']} is not in pillar {item['pillar']}")
    for line in errors:
        print(line)
    if errors:
        return 1
    print("valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
