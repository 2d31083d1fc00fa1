"""Which operations of the served specs answered schemathesis a success at least once, from the
responses scripts/schemathesis_reach.py noted (one `operation_id status` line each): prints the
count and every operation that never did (those in NEVER_REACHED are left out, each with its
reason). With --strict, exits 1 when any other operation was never reached.

    python3 scripts/reached.py [--strict] SEEN_FILE SPEC_URL [SPEC_URL ...]
"""

import json
import sys
import urllib.request

# Operations a run cannot bring to a success, each with why.
NEVER_REACHED = {
    "auth_logout": "excluded: it would end the token every other request carries",
    "auth_logout_all": "excluded: as auth_logout",
    "auth_sessions_delete": "excluded: it signs schemathesis's own device out",
    "events": "excluded: a Server-Sent Events stream never ends",
}

def reached(seen: str) -> set[str]:
    return {op for op, status in (line.split() for line in seen.splitlines() if line) if status.startswith("2")}


def operations(spec_url: str) -> list[str]:
    spec = json.load(urllib.request.urlopen(spec_url))
    return [op["operationId"] for item in spec["paths"].values() for op in item.values()]


def main() -> int:
    args = sys.argv[1:]
    strict = "--strict" in args
    args = [a for a in args if a != "--strict"]
    ok = reached(open(args[0]).read())
    ops = [op for url in args[1:] for op in operations(url)]
    missing = [op for op in ops if op not in ok and op not in NEVER_REACHED]
    print(f"schemathesis reached {len(ops) - len(missing)} of {len(ops)} operations with a 2xx "
          f"({len(NEVER_REACHED)} excluded on purpose)")
    for op in missing:
        print(f"  never a 2xx: {op}")
    return 1 if strict and missing else 0


if __name__ == "__main__":
    sys.exit(main())
