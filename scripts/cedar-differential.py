#!/usr/bin/env python3
"""Differential test of Menshen's Cedar engine against the reference Rust engine (cedarpy).

From a seed, generates random worlds (a schema with a random namespace, entity
hierarchy, attributes of every type, tags) and, per world, random policy sets
(scopes with ==/in/is, when/unless conditions over the whole expression
language: has, like, if-then-else, sets, records, Long arithmetic including
overflow, ip/decimal/datetime/duration and their methods, tags, deliberately
ill-typed sub-expressions that raise errors) and requests. Every case runs
through `menshen policy authorize --batch` (one process for all cases) and
through cedarpy; decision, reasons (as a set) and erroring policy ids (as a
set) must agree. When cedarpy rejects a case outright (NoDecision, e.g. an
invalid request), Menshen must report an error for it too.

On a disagreement, prints the seed, the case number and a reduced reproducer
(policies removed one by one while the disagreement persists).
Ends with `N passed, M failed`; exit status 0 iff M is 0.

Usage: .venv-test/bin/python scripts/cedar-differential.py [--seed S] [--cases N] [--menshen PATH]
Needs cedarpy: python3 -m venv .venv-test && .venv-test/bin/pip install cedarpy
"""
import argparse
import json
import os
import random
import subprocess
import sys
import time

try:
    import cedarpy
    from cedarpy import Entities, PolicySet, Schema
except ImportError:
    sys.exit("cedarpy not installed: python3 -m venv .venv-test && .venv-test/bin/pip install cedarpy")

INT_MAX = 2**63 - 1
INT_MIN = -(2**63)


def _version():
    try:
        from importlib.metadata import version
        return version("cedarpy")
    except Exception:  # noqa: BLE001
        return "?"


def cq(s):
    """Quote a string as a Cedar string literal."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\0":
            out.append("\\0")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\u{%x}" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


WEIRD_IDS = ["", "a b", 'quo"te', "back\\slash", "ünïcødé", "日本", "tab\tx", "emoji😀", "*", "new\nline"]
STRINGS = ["", "a", "ab", "abc", "alice", "Alice", "x*y", "b", "zz", "hello world", "é", "日本語", "*", "a*b*c"]
IPS = ["10.0.0.1", "10.0.0.0/8", "192.168.1.10", "192.168.0.0/16", "127.0.0.1", "::1", "fe80::1",
       "224.0.0.1", "ff00::/8", "0.0.0.0/0", "2001:db8::/32", "2001:db8::5", "10.1.2.3/32", "127.0.0.0/8"]
BAD_IPS = ["bogus", "10.0.0.256", "1.2.3", "::g", "10.0.0.1/33"]
DECIMALS = ["0.0", "1.2345", "-3.5", "922337203685477.5807", "-922337203685477.5808", "10.1", "0.0001", "2.5"]
BAD_DECIMALS = ["1.23456", "abc", "1.", "922337203685477.5808"]
DATETIMES = ["2024-01-01", "2024-01-01T10:00:00Z", "2024-02-29T23:59:59.999Z", "1970-01-01",
             "2024-06-15T08:30:00+0200", "2023-12-31T23:00:00-0130", "1969-07-20T20:17:40Z", "2038-01-19T03:14:08Z"]
BAD_DATETIMES = ["2024-13-01", "2024-01-01T25:00:00Z", "yesterday", "2024-1-1"]
DURATIONS = ["1h", "-2d3h", "30m", "1d2h3m4s5ms", "0ms", "90s", "-1ms", "100d", "2h30m"]
BAD_DURATIONS = ["1x", "h", "1h1d", ""]
PATTERNS = ["*", "a*", "*a", "*b*", "a*b*c", "alice", "", "\\*", "*\\**", "日*", "hello*world", "a**"]


class World:
    """A schema plus entity store, shared by several cases."""

    def __init__(self, rng):
        self.rng = rng
        self.ns = rng.choice(["", "", "Acme", "Org::Sub"])
        p = self.ns + "::" if self.ns else ""
        self.T = lambda n: p + n
        self.users = ["u%d" % i for i in range(rng.randint(2, 5))]
        if rng.random() < 0.3:
            self.users.append(rng.choice(WEIRD_IDS))
        self.users = list(dict.fromkeys(self.users))
        self.groups = ["g%d" % i for i in range(rng.randint(1, 4))]
        self.folders = ["f%d" % i for i in range(rng.randint(1, 3))]
        self.docs = ["d%d" % i for i in range(rng.randint(1, 4))]
        self.actions = ["read", "write", "delete"]
        self.schema = self._schema()
        self.entities = self._entities()

    def _schema(self):
        body = """
entity Group in [Group] { name: String };
entity Folder in [Folder] { name: String };
entity User in [Group] {
  name: String, age: Long, level?: Long, ip: ipaddr, score: decimal, joined: datetime,
  session: duration, tags: Set<String>, manager?: User,
  profile: { dept: String, active: Bool, nums?: Set<Long> }
} tags String;
entity Doc in [Folder] {
  owner: User, title: String, public: Bool, size: Long, labels: Set<String>, created: datetime
} tags Long;
action all;
action read in [all] appliesTo {
  principal: [User], resource: [Doc, Folder],
  context: { ip: ipaddr, n: Long, flag?: Bool, when: datetime, s: String, d: decimal, dur: duration }
};
action write in [all, read] appliesTo {
  principal: [User], resource: [Doc, Folder],
  context: { ip: ipaddr, n: Long, flag?: Bool, when: datetime, s: String, d: decimal, dur: duration }
};
action delete in [write] appliesTo {
  principal: [User], resource: [Doc],
  context: { ip: ipaddr, n: Long, flag?: Bool, when: datetime, s: String, d: decimal, dur: duration }
};
"""
        if self.ns:
            return "namespace %s {%s}\n" % (self.ns, body)
        return body

    def uid(self, t, i):
        return {"type": self.T(t), "id": i}

    def euid_json(self, t, i):
        u = self.uid(t, i)
        return {"__entity": u} if self.rng.random() < 0.3 else u

    def ext_json(self, fn, arg):
        return {"__extn": {"fn": fn, "arg": arg}} if self.rng.random() < 0.3 else arg

    def _parents(self, items, idx, kind):
        return [self.uid(kind, items[j]) for j in range(idx) if self.rng.random() < 0.4]

    def _entities(self):
        r = self.rng
        out = []
        for i, g in enumerate(self.groups):
            out.append({"uid": self.uid("Group", g), "attrs": {"name": r.choice(STRINGS)},
                        "parents": self._parents(self.groups, i, "Group")})
        for i, f in enumerate(self.folders):
            out.append({"uid": self.uid("Folder", f), "attrs": {"name": r.choice(STRINGS)},
                        "parents": self._parents(self.folders, i, "Folder")})
        for u in self.users:
            attrs = {
                "name": r.choice(STRINGS), "age": r.choice([0, 17, 18, 42, -5, INT_MAX, INT_MIN, 100]),
                "ip": self.ext_json("ip", r.choice(IPS)), "score": self.ext_json("decimal", r.choice(DECIMALS)),
                "joined": self.ext_json("datetime", r.choice(DATETIMES)),
                "session": self.ext_json("duration", r.choice(DURATIONS)),
                "tags": r.sample(STRINGS, r.randint(0, 3)),
                "profile": {"dept": r.choice(["eng", "ops", "audit", ""]), "active": r.random() < 0.6},
            }
            if r.random() < 0.5:
                attrs["level"] = r.randint(-3, 10)
            if r.random() < 0.5:
                attrs["manager"] = self.euid_json("User", r.choice(self.users + ["ghost"]))
            if r.random() < 0.5:
                attrs["profile"]["nums"] = [r.randint(-2, 5) for _ in range(r.randint(0, 3))]
            tags = {k: r.choice(STRINGS) for k in r.sample(["k", "role", "x", "é"], r.randint(0, 3))}
            ent = {"uid": self.uid("User", u), "attrs": attrs,
                   "parents": [self.uid("Group", g) for g in self.groups if r.random() < 0.4]}
            if tags or r.random() < 0.5:
                ent["tags"] = tags
            out.append(ent)
        for d in self.docs:
            ent = {"uid": self.uid("Doc", d), "attrs": {
                "owner": self.euid_json("User", r.choice(self.users + ["ghost"])), "title": r.choice(STRINGS),
                "public": r.random() < 0.5, "size": r.choice([0, 1, 1024, INT_MAX, -1]),
                "labels": r.sample(STRINGS, r.randint(0, 3)),
                "created": self.ext_json("datetime", r.choice(DATETIMES))},
                "parents": [self.uid("Folder", f) for f in self.folders if r.random() < 0.5]}
            tags = {k: r.choice([0, 1, -7, INT_MAX]) for k in r.sample(["k", "level", "x"], r.randint(0, 2))}
            if tags:
                ent["tags"] = tags
            out.append(ent)
        r.shuffle(out)
        return out

    # -- requests ---------------------------------------------------------------
    def request(self):
        r = self.rng
        action = r.choice(self.actions)
        principal = r.choice(self.users + (["ghost"] if r.random() < 0.1 else []))
        if action == "delete" or r.random() < 0.7:
            res = ("Doc", r.choice(self.docs + (["nodoc"] if r.random() < 0.1 else [])))
        else:
            res = ("Folder", r.choice(self.folders))
        ctx = {"ip": self.ext_json("ip", r.choice(IPS)), "n": r.choice([0, 1, 5, -1, INT_MAX, INT_MIN, 7]),
               "when": self.ext_json("datetime", r.choice(DATETIMES)), "s": r.choice(STRINGS),
               "d": self.ext_json("decimal", r.choice(DECIMALS)), "dur": self.ext_json("duration", r.choice(DURATIONS))}
        if r.random() < 0.5:
            ctx["flag"] = r.random() < 0.5
        if r.random() < 0.02:  # an invalid context: both engines must reject the request
            ctx["n"] = "not a number"
        return {"principal": self.uid("User", principal), "action": self.uid("Action", action),
                "resource": self.uid(*res), "context": ctx}


class ExprGen:
    """Random Cedar expressions of a wanted type; sometimes deliberately of the wrong type."""

    TYPES = ["bool", "long", "string", "set", "entity", "ip", "decimal", "datetime", "duration", "record"]

    def __init__(self, rng, world):
        self.r = rng
        self.w = world

    def ent(self, t, i):
        return "%s::%s" % (self.w.T(t), cq(i))

    def gen(self, ty, depth):
        r = self.r
        if depth > 0 and r.random() < 0.04:  # ill-typed on purpose
            ty = r.choice(self.TYPES)
        if depth <= 0:
            return self.leaf(ty)
        return getattr(self, "g_" + ty)(depth - 1)

    def leaf(self, ty):
        r = self.r
        if ty == "bool":
            return r.choice(["true", "false", "context.flag", "principal.profile.active", "resource.public"])
        if ty == "long":
            return r.choice([str(r.randint(-5, 20)), str(INT_MAX), "(%d)" % (INT_MIN + 1), "principal.age",
                             "principal.level", "context.n", "resource.size", "-%d" % r.randint(0, 9)])
        if ty == "string":
            return r.choice([cq(r.choice(STRINGS)), "principal.name", "context.s", "resource.title",
                             "principal.profile.dept"])
        if ty == "set":
            return r.choice(["principal.tags", "resource.labels", "[]", "[1, 2, 3]", '["a", "b"]',
                             "principal.profile.nums", "[principal, resource]"])
        if ty == "entity":
            return r.choice(["principal", "resource", "action", "resource.owner", "principal.manager",
                             self.ent("User", r.choice(self.w.users)), self.ent("Group", r.choice(self.w.groups)),
                             self.ent("Folder", r.choice(self.w.folders)), self.ent("Action", r.choice(self.w.actions + ["all"]))])
        if ty == "ip":
            return r.choice(["context.ip", "principal.ip", 'ip(%s)' % cq(r.choice(IPS))] +
                            (['ip(%s)' % cq(r.choice(BAD_IPS))] if r.random() < 0.05 else []))
        if ty == "decimal":
            return r.choice(["principal.score", "context.d", 'decimal(%s)' % cq(r.choice(DECIMALS))] +
                            (['decimal(%s)' % cq(r.choice(BAD_DECIMALS))] if r.random() < 0.05 else []))
        if ty == "datetime":
            return r.choice(["principal.joined", "context.when", "resource.created", 'datetime(%s)' % cq(r.choice(DATETIMES))] +
                            (['datetime(%s)' % cq(r.choice(BAD_DATETIMES))] if r.random() < 0.05 else []))
        if ty == "duration":
            return r.choice(["principal.session", "context.dur", 'duration(%s)' % cq(r.choice(DURATIONS))] +
                            (['duration(%s)' % cq(r.choice(BAD_DURATIONS))] if r.random() < 0.05 else []))
        if ty == "record":
            return r.choice(["principal.profile", "context", '{a: 1, "b c": "x"}', "{}", '{dept: "eng", active: true}'])
        raise ValueError(ty)

    def ite(self, ty, d):
        return "(if %s then %s else %s)" % (self.gen("bool", d), self.gen(ty, d), self.gen(ty, d))

    def g_bool(self, d):
        r = self.r
        k = r.randrange(24)
        g = self.gen
        if k == 0:
            return "(%s && %s)" % (g("bool", d), g("bool", d))
        if k == 1:
            return "(%s || %s)" % (g("bool", d), g("bool", d))
        if k == 2:
            return "!%s" % g("bool", d)
        if k == 3:
            return self.ite("bool", d)
        if k == 4:
            return "(%s %s %s)" % (g("long", d), r.choice(["<", "<=", ">", ">="]), g("long", d))
        if k == 5:
            t = r.choice(self.TYPES)
            t2 = t if r.random() < 0.8 else r.choice(self.TYPES)
            return "(%s %s %s)" % (g(t, d), r.choice(["==", "!="]), g(t2, d))
        if k == 6:
            rhs = g("entity", d) if r.random() < 0.6 else "[%s]" % ", ".join(g("entity", d) for _ in range(r.randint(0, 3)))
            return "(%s in %s)" % (g("entity", d), rhs)
        if k == 7:
            target, attrs = r.choice([("principal", ["level", "manager", "name", "nope", "profile", '"tags"']),
                                      ("principal.profile", ["nums", "dept", "zzz"]),
                                      ("context", ["flag", "ip", "missing"]),
                                      ("resource", ["owner", "size", "name", "labels"]),
                                      ("principal.manager", ["level", "name"]),
                                      ('{a: 1}', ["a", "b"])])
            return "(%s has %s)" % (target, r.choice(attrs))
        if k == 8:
            return "(%s like %s)" % (g("string", d), cq(r.choice(PATTERNS)))
        if k == 9:
            t = r.choice(["User", "Group", "Doc", "Folder", "Action", "Nope"])
            return "(%s is %s)" % (g("entity", d), self.w.T(t))
        if k == 10:
            elem = r.choice(["long", "string", "entity"])
            return "%s.contains(%s)" % (g("set", d), g(elem, d))
        if k == 11:
            return "%s.%s(%s)" % (g("set", d), r.choice(["containsAll", "containsAny"]), g("set", d))
        if k == 12:
            return "%s.isEmpty()" % g("set", d)
        if k == 13:
            m = r.choice(["isIpv4()", "isIpv6()", "isLoopback()", "isMulticast()", "isInRange(%s)" % g("ip", d)])
            return "%s.%s" % (g("ip", d), m)
        if k == 14:
            m = r.choice(["lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual"])
            return "%s.%s(%s)" % (g("decimal", d), m, g("decimal", d))
        if k == 15:
            t = r.choice(["datetime", "duration"])
            return "(%s %s %s)" % (g(t, d), r.choice(["<", "<=", ">", ">="]), g(t, d))
        if k == 16:
            return "%s.hasTag(%s)" % (r.choice(["principal", "resource", "principal.manager", "resource.owner"]),
                                      cq(r.choice(["k", "role", "x", "level", "é", "none"])))
        if k == 17:
            return "(%s.getTag(%s) == %s)" % (r.choice(["principal", "resource.owner"]),
                                              cq(r.choice(["k", "role", "x"])), g("string", d))
        if k == 18:
            return "(%s.%s)" % (g("record", d), r.choice(["active", "a", "dept == \"eng\""]))
        if k == 19:
            return "(%s is %s in %s)" % (g("entity", d), self.w.T(r.choice(["User", "Doc"])), g("entity", d))
        if k == 20:
            return "%s.isInRange(%s)" % (g("ip", d), g("ip", d))
        if k == 21:
            return "(%s == %s)" % (g("set", d), g("set", d))
        if k == 22:
            return "(%s.getTag(%s) > %s)" % (r.choice(["resource", "principal"]), cq(r.choice(["k", "level"])), g("long", d))
        return self.leaf("bool")

    def g_long(self, d):
        r = self.r
        k = r.randrange(8)
        if k == 0:
            return "(%s %s %s)" % (self.gen("long", d), r.choice(["+", "-", "*"]), self.gen("long", d))
        if k == 1:
            return "(-%s)" % self.gen("long", d)
        if k == 2:
            return self.ite("long", d)
        if k == 3:
            return "%s.%s()" % (self.gen("duration", d), r.choice(["toDays", "toHours", "toMinutes", "toSeconds", "toMilliseconds"]))
        if k == 4:
            return "(%s * %d)" % (self.gen("long", d), r.choice([2, -1, 1000000007, INT_MAX]))
        if k == 5:
            return "resource.getTag(%s)" % cq(r.choice(["k", "level", "x"]))
        return self.leaf("long")

    def g_string(self, d):
        r = self.r
        k = r.randrange(4)
        if k == 0:
            return self.ite("string", d)
        if k == 1:
            return "principal.getTag(%s)" % cq(r.choice(["k", "role", "é"]))
        return self.leaf("string")

    def g_set(self, d):
        r = self.r
        k = r.randrange(4)
        if k == 0:
            t = r.choice(["long", "string", "entity", "ip", "decimal"])
            return "[%s]" % ", ".join(self.gen(t, d) for _ in range(r.randint(0, 3)))
        if k == 1:
            return self.ite("set", d)
        return self.leaf("set")

    def g_entity(self, d):
        r = self.r
        k = r.randrange(4)
        if k == 0:
            return self.ite("entity", d)
        if k == 1:
            return "%s.%s" % (r.choice(["resource", "principal.manager", "resource.owner"]), r.choice(["owner", "manager"]))
        return self.leaf("entity")

    def g_ip(self, d):
        return self.ite("ip", d) if self.r.random() < 0.2 else self.leaf("ip")

    def g_decimal(self, d):
        return self.ite("decimal", d) if self.r.random() < 0.2 else self.leaf("decimal")

    def g_datetime(self, d):
        r = self.r
        k = r.randrange(5)
        if k == 0:
            return "%s.offset(%s)" % (self.gen("datetime", d), self.gen("duration", d))
        if k == 1:
            return "%s.toDate()" % self.gen("datetime", d)
        if k == 2:
            return self.ite("datetime", d)
        return self.leaf("datetime")

    def g_duration(self, d):
        r = self.r
        k = r.randrange(4)
        if k == 0:
            return "%s.durationSince(%s)" % (self.gen("datetime", d), self.gen("datetime", d))
        if k == 1:
            return "%s.toTime()" % self.gen("datetime", d)
        return self.leaf("duration")

    def g_record(self, d):
        r = self.r
        if r.random() < 0.5:
            keys = r.sample(["a", "b", "dept", "active", '"sp ace"'], r.randint(0, 3))
            return "{%s}" % ", ".join("%s: %s" % (k, self.gen(r.choice(self.TYPES), d)) for k in keys)
        return self.leaf("record")


def gen_policy(rng, world):
    g = ExprGen(rng, world)
    T = world.T
    effect = "permit" if rng.random() < 0.65 else "forbid"
    ps = rng.choice([
        "principal", "principal", "principal == %s" % g.ent("User", rng.choice(world.users)),
        "principal in %s" % g.ent("Group", rng.choice(world.groups)), "principal is %s" % T("User"),
        "principal is %s in %s" % (T("User"), g.ent("Group", rng.choice(world.groups))),
        "principal in %s" % g.ent("User", rng.choice(world.users)), "principal is %s" % T("Group")])
    acts = [g.ent("Action", a) for a in world.actions + ["all"]]
    acs = rng.choice(["action", "action", "action == %s" % rng.choice(acts), "action in %s" % rng.choice(acts),
                      "action in [%s]" % ", ".join(rng.sample(acts, rng.randint(0, 3)))])
    rs = rng.choice([
        "resource", "resource", "resource == %s" % g.ent("Doc", rng.choice(world.docs)),
        "resource in %s" % g.ent("Folder", rng.choice(world.folders)), "resource is %s" % T("Doc"),
        "resource is %s in %s" % (T("Folder"), g.ent("Folder", rng.choice(world.folders))),
        "resource in %s" % g.ent("Doc", rng.choice(world.docs))])
    text = ""
    if rng.random() < 0.2:
        text += "@id(%s)\n" % cq("p%d" % rng.randint(0, 99))
    text += "%s (%s, %s, %s)" % (effect, ps, acs, rs)
    for _ in range(rng.choice([0, 1, 1, 1, 2])):
        text += "\n%s { %s }" % (rng.choice(["when", "when", "unless"]), g.gen("bool", rng.randint(1, 4)))
    return text + ";"


def cedarpy_answer(case, world_cache):
    key = (case["schema"], case["entities_text"])
    if key not in world_cache:
        world_cache.clear()
        schema = Schema.from_str(case["schema"])
        try:
            ents = Entities.from_json_str(case["entities_text"], schema=schema)
        except Exception as e:  # noqa: BLE001
            ents = e
        world_cache[key] = (schema, ents)
    schema, ents = world_cache[key]
    if isinstance(ents, Exception):
        return {"error": str(ents)}
    res = cedarpy.is_authorized(case["request"], case["policies"], ents, schema)
    if res.decision.value == "NoDecision":
        return {"error": "; ".join(res.diagnostics.errors)}
    errs = set()
    for e in res.diagnostics.errors:
        if "policy `" in e:
            errs.add(e.split("policy `", 1)[1].split("`", 1)[0])
        else:
            errs.add("<non-policy error: %s>" % e)
    return {"decision": res.decision.value.lower(), "reasons": set(res.diagnostics.reasons), "errors": errs}


def menshen_lines(case):
    line = {"id": case["n"], "policies": case["policies"], "schema": case["schema"],
            "entities": case["entities"], **case["request"]}
    return json.dumps(line, ensure_ascii=False)


def run_menshen(binary, cases):
    inp = "".join(menshen_lines(c) + "\n" for c in cases)
    p = subprocess.run([binary, "policy", "authorize", "--batch", "-"], input=inp.encode(), capture_output=True)
    out = {}
    for line in p.stdout.decode().splitlines():
        if line.strip():
            d = json.loads(line)
            out[d.get("id")] = d
    if len(out) != len(cases):
        sys.stderr.write("menshen returned %d results for %d cases (exit %d): %s\n" % (
            len(out), len(cases), p.returncode, p.stderr.decode()[-2000:]))
    return out


def normalise_menshen(d):
    if d is None:
        return {"error": "no result"}
    if "error" in d:
        return {"error": d["error"]}
    return {"decision": d["decision"], "reasons": set(d["reasons"]), "errors": {e["policy"] for e in d["errors"]}}


def agree(a, b):
    if "error" in a or "error" in b:
        return ("error" in a) == ("error" in b)
    return a == b


def split_policies(text):
    return [p for p in text.split("\n\n") if p.strip()]


def reduce_case(binary, case):
    """Remove policies one at a time while the engines still disagree."""
    pols = split_policies(case["policies"])
    i = 0
    while i < len(pols) and len(pols) > 1:
        trial = dict(case, policies="\n\n".join(pols[:i] + pols[i + 1:]))
        m = normalise_menshen(run_menshen(binary, [trial]).get(case["n"]))
        c = cedarpy_answer(trial, {})
        if not agree(m, c):
            pols = pols[:i] + pols[i + 1:]
        else:
            i += 1
    return dict(case, policies="\n\n".join(pols))


def show(x):
    if "error" in x:
        return "error: %s" % x["error"][:300]
    return "%s reasons=%s errors=%s" % (x["decision"], sorted(x["reasons"]), sorted(x["errors"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: time based, printed)")
    ap.add_argument("--cases", type=int, default=10000)
    ap.add_argument("--menshen", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".build", "debug", "menshen"))
    ap.add_argument("--max-reports", type=int, default=10, help="disagreements reduced and printed in full")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else int(time.time()) % 1000000
    print("cedar-differential: seed %d, %d cases, cedarpy %s" % (seed, args.cases, _version()))
    rng = random.Random(seed)
    t0 = time.time()
    cases = []
    world = None
    for n in range(args.cases):
        if world is None or n % 25 == 0:
            world = World(rng)
            ents_text = json.dumps(world.entities, ensure_ascii=False)
        pols = [gen_policy(rng, world) for _ in range(rng.randint(1, 6))]
        cases.append({"n": n, "schema": world.schema, "entities": world.entities, "entities_text": ents_text,
                      "policies": "\n\n".join(pols), "request": world.request()})
    t1 = time.time()
    got = run_menshen(args.menshen, cases)
    t2 = time.time()
    passed = failed = 0
    wc = {}
    stats = {"allow": 0, "deny": 0, "error": 0, "with_policy_errors": 0}
    for c in cases:
        exp = cedarpy_answer(c, wc)
        mine = normalise_menshen(got.get(c["n"]))
        if "error" in exp:
            stats["error"] += 1
        else:
            stats[exp["decision"]] += 1
            stats["with_policy_errors"] += bool(exp["errors"])
        if agree(mine, exp):
            passed += 1
            continue
        failed += 1
        if failed <= args.max_reports:
            small = reduce_case(args.menshen, c)
            print("\nDISAGREEMENT seed %d case %d" % (seed, c["n"]))
            print("  menshen: %s" % show(normalise_menshen(run_menshen(args.menshen, [small]).get(c["n"]))))
            print("  cedarpy: %s" % show(cedarpy_answer(small, {})))
            print("  reproducer (one `menshen policy authorize --batch -` line):")
            print("  " + menshen_lines(small))
    t3 = time.time()
    print("# generated in %.1fs, menshen %.1fs, cedarpy+compare %.1fs; expected: %d allow, %d deny, %d rejected, %d with policy errors"
          % (t1 - t0, t2 - t1, t3 - t2, stats["allow"], stats["deny"], stats["error"], stats["with_policy_errors"]))
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
