#!/usr/bin/env python3
"""Compare our schema/ tables against a real OpenEMR database on the same MariaDB server.

Usage:
    python3 schema/check_against_real.py --ours DB_BUILT_FROM_SCHEMA --real DB_BUILT_FROM_DATABASE_SQL \
        [--host 127.0.0.1] [--port 3306] [--socket PATH] [--user root] [--password PW]

For every table in --ours, every column must exist in --real with the same COLUMN_TYPE, IS_NULLABLE,
COLUMN_DEFAULT and EXTRA (auto_increment / on update).  Our columns must appear in the same relative order
as in the real table.  Columns present only in --real are listed as information (patient_data and
history_data are intentional subsets).  Indexes of --ours must exist in --real with the same uniqueness and
column list; real indexes missing from ours are an error unless they use a column ours omits.

Exit status: 0 = no differences, 1 = differences found, 2 = usage / connection error.
Only python3 stdlib and the `mariadb` command-line client are needed.
"""
import argparse
import subprocess
import sys


def run_query(args, sql):
    cmd = ["mariadb", "--batch", "--raw", "--skip-column-names", "-u", args.user]
    if args.password is not None:
        cmd.append("--password=" + args.password)
    if args.socket:
        cmd += ["--socket", args.socket]
    else:
        cmd += ["-h", args.host, "-P", str(args.port)]
    cmd += ["-e", sql]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        sys.stderr.write("mariadb failed: %s\n" % proc.stderr.decode("utf-8", "replace"))
        sys.exit(2)
    rows = []
    for line in proc.stdout.decode("utf-8", "replace").split("\n"):
        if line == "":
            continue
        # --raw: no escaping; NULL is printed as the word NULL, so we wrap values ourselves below.
        rows.append(line.split("\t"))
    return rows


def quote(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def columns(args, db):
    # COLUMN_DEFAULT may be SQL NULL (no default) or the string 'NULL' (DEFAULT NULL); keep them apart.
    sql = (
        "SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, "
        "IF(COLUMN_DEFAULT IS NULL, '<no default>', HEX(COLUMN_DEFAULT)), EXTRA "
        "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
        "ORDER BY TABLE_NAME, ORDINAL_POSITION" % quote(db)
    )
    out = {}
    for t, c, pos, ctype, nullable, dflt, extra in run_query(args, sql):
        if dflt != "<no default>":
            dflt = bytes.fromhex(dflt).decode("utf-8", "replace")
        out.setdefault(t, {})[c] = {
            "pos": int(pos),
            "COLUMN_TYPE": ctype,
            "IS_NULLABLE": nullable,
            "COLUMN_DEFAULT": dflt,
            "EXTRA": extra,
        }
    return out


def indexes(args, db):
    sql = (
        "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, "
        "GROUP_CONCAT(CONCAT(COLUMN_NAME, IFNULL(CONCAT('(', SUB_PART, ')'), '')) ORDER BY SEQ_IN_INDEX) "
        "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s "
        "GROUP BY TABLE_NAME, INDEX_NAME, NON_UNIQUE" % quote(db)
    )
    out = {}
    for t, name, non_unique, cols in run_query(args, sql):
        out.setdefault(t, {})[name] = (non_unique == "0", cols)
    return out


def show(v):
    return "(no default)" if v == "<no default>" else repr(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ours", required=True, help="database loaded from schema/*.sql")
    ap.add_argument("--real", required=True, help="database loaded from OpenEMR's sql/database.sql")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=3306)
    ap.add_argument("--socket")
    ap.add_argument("--user", default="root")
    ap.add_argument("--password")
    args = ap.parse_args()

    ours, real = columns(args, args.ours), columns(args, args.real)
    ours_idx, real_idx = indexes(args, args.ours), indexes(args, args.real)
    if not ours:
        sys.stderr.write("database %s has no tables\n" % args.ours)
        return 2

    problems = 0
    info = []
    for table in sorted(ours):
        if table not in real:
            print("[%s] table missing in %s" % (table, args.real))
            problems += 1
            continue
        oc, rc = ours[table], real[table]
        for col, o in sorted(oc.items(), key=lambda kv: kv[1]["pos"]):
            if col not in rc:
                print("[%s.%s] column missing in %s" % (table, col, args.real))
                problems += 1
                continue
            r = rc[col]
            for attr in ("COLUMN_TYPE", "IS_NULLABLE", "COLUMN_DEFAULT", "EXTRA"):
                if o[attr] != r[attr]:
                    print("[%s.%s] %s differs: ours=%s real=%s" % (table, col, attr, show(o[attr]), show(r[attr])))
                    problems += 1
        # relative column order
        common = [c for c in sorted(oc, key=lambda c: oc[c]["pos"]) if c in rc]
        if common != sorted(common, key=lambda c: rc[c]["pos"]):
            print("[%s] column order differs from %s" % (table, args.real))
            problems += 1
        only_real = [c for c in sorted(rc, key=lambda c: rc[c]["pos"]) if c not in oc]
        if only_real:
            missing_required = [c for c in only_real
                                if rc[c]["IS_NULLABLE"] == "NO" and rc[c]["COLUMN_DEFAULT"] == "<no default>"
                                and "auto_increment" not in rc[c]["EXTRA"]]
            for c in missing_required:
                print("[%s.%s] NOT NULL column without default is missing in ours" % (table, c))
                problems += 1
            info.append("[%s] %d real column(s) not in ours (subset)" % (table, len(only_real)))

        oi, ri = ours_idx.get(table, {}), real_idx.get(table, {})
        for name, (uniq, cols) in sorted(oi.items()):
            if name not in ri:
                print("[%s] index %s missing in %s" % (table, name, args.real))
                problems += 1
            elif ri[name] != (uniq, cols):
                print("[%s] index %s differs: ours=%s%s real=%s%s" % (
                    table, name, "UNIQUE " if uniq else "", cols, "UNIQUE " if ri[name][0] else "", ri[name][1]))
                problems += 1
        for name, (uniq, cols) in sorted(ri.items()):
            if name in oi:
                continue
            used = [c.split("(")[0] for c in cols.split(",")]
            if all(c in oc for c in used):
                print("[%s] index %s (%s) exists in %s but not in ours" % (table, name, cols, args.real))
                problems += 1
            else:
                info.append("[%s] index %s skipped (uses omitted columns)" % (table, name))

    for line in info:
        print("info: " + line)
    print("%d table(s) checked, %d difference(s)" % (len(ours), problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
