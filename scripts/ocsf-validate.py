#!/usr/bin/env python3
"""Validates OCSF events offline against the OCSF 1.8.0 JSON Schema.

    scripts/ocsf-validate.py EVENTS.jsonl        (one event object per line; `-` reads stdin)

Each event is checked with the class schema and the profiles it lists in
`metadata.profiles`, as emitted by PyPI `ocsf-json-schema` (JSON Schema
2020-12, validated with `jsonschema`), plus what that schema does not check:
`type_uid` = `class_uid` × 100 + `activity_id`, `category_uid` matches the
class, and `metadata.version` is "1.8.0".

Prints one JSON object: {"checked": N, "classes": {"3002": n, ...},
"failures": [{"line": L, "class_uid": C, "errors": [...]}, ...]}; exit status 0
only when every line is a valid event, 1 otherwise, 2 on a usage error.
Needs `ocsf-json-schema` and `jsonschema` (scripts/test installs them in .venv-test).
"""
import json
import sys

MAX_LINE_BYTES = 1_000_000


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        from jsonschema import Draft202012Validator
        from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema
    except ImportError as e:
        print(f"ocsf-validate: {e} (install ocsf-json-schema and jsonschema)", file=sys.stderr)
        return 2
    raw = get_ocsf_schema(version="1.8.0")
    schema = OcsfJsonSchemaEmbedded(raw)
    by_uid = {c["uid"]: (name, c.get("category_uid")) for name, c in raw["classes"].items()}
    validators = {}
    stream = sys.stdin if sys.argv[1] == "-" else open(sys.argv[1], encoding="utf-8")
    checked, classes, failures = 0, {}, []
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        checked += 1
        errors = []
        if len(line.encode()) > MAX_LINE_BYTES:
            failures.append({"line": number, "class_uid": None, "errors": ["line too long"]})
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as e:
            failures.append({"line": number, "class_uid": None, "errors": [f"not JSON: {e}"]})
            continue
        if not isinstance(event, dict):
            failures.append({"line": number, "class_uid": None, "errors": ["not a JSON object"]})
            continue
        uid = event.get("class_uid")
        classes[str(uid)] = classes.get(str(uid), 0) + 1
        if uid not in by_uid:
            failures.append({"line": number, "class_uid": uid, "errors": [f"unknown class_uid {uid!r}"]})
            continue
        name, category = by_uid[uid]
        metadata = event.get("metadata") if isinstance(event.get("metadata"), dict) else {}
        profiles = metadata.get("profiles") or []
        if not isinstance(profiles, list) or not all(isinstance(p, str) for p in profiles):
            errors.append("metadata.profiles is not a list of names")
            profiles = []
        key = (name, tuple(sorted(profiles)))
        if key not in validators:
            try:
                validators[key] = Draft202012Validator(schema.get_class_schema(class_name=name, profiles=sorted(profiles)))
            except Exception as e:  # an unknown profile name
                errors.append(f"no schema for {name} with profiles {profiles}: {e}")
        if key in validators:
            for error in validators[key].iter_errors(event):
                path = "/".join(str(p) for p in error.absolute_path) or "(event)"
                errors.append(f"{path}: {error.message[:300]}")
        activity = event.get("activity_id")
        if isinstance(activity, int) and event.get("type_uid") != uid * 100 + activity:
            errors.append(f"type_uid {event.get('type_uid')!r} is not class_uid*100+activity_id = {uid * 100 + activity}")
        if event.get("category_uid") != category:
            errors.append(f"category_uid {event.get('category_uid')!r} is not the class's {category}")
        if metadata.get("version") != "1.8.0":
            errors.append(f"metadata.version {metadata.get('version')!r} is not 1.8.0")
        if errors:
            failures.append({"line": number, "class_uid": uid, "errors": errors[:20]})
    print(json.dumps({"checked": checked, "classes": classes, "failures": failures}, ensure_ascii=False))
    return 0 if not failures and checked > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
