#!/usr/bin/env python3
"""Run the Athena queries in infra/athena/ against a local bucket with DuckDB, as Athena would
read it: every column text (OpenCSVSerde), one header skipped per object, "date" from the
date=YYYY-MM-DD folders (partition projection).

    python scripts/athena-local.py [BUCKET_DIR] [--today YYYY-MM-DD] [QUERY.sql ...]

--today pins `current_date` (the queries look back 90 days; the sample calls have fixed dates).
"""
import argparse
import pathlib
import re
import sys

import duckdb

ROOT = pathlib.Path(__file__).resolve().parent.parent
ap = argparse.ArgumentParser()
ap.add_argument("bucket", nargs="?", default="local-bucket")
ap.add_argument("--prefix", default="calltype/")
ap.add_argument("--today")
ap.add_argument("--max-rows", type=int, default=20)
ap.add_argument("queries", nargs="*")
args = ap.parse_args()

views = (ROOT / "infra/athena/duckdb-local.sql").read_text()
views = views.replace("local-bucket/calltype/", f"{args.bucket.rstrip('/')}/{args.prefix}")
con = duckdb.connect()
con.execute(views)
queries = [pathlib.Path(q) for q in args.queries] or sorted(
    p for p in (ROOT / "infra/athena").glob("*.sql") if p.name != "duckdb-local.sql"
)
for q in queries:
    sql = q.read_text()
    if args.today:
        sql = re.sub(r"\bcurrent_date\b", f"DATE '{args.today}'", sql)
    cur = con.execute(sql)
    cols = [d[0] for d in cur.description]
    rows = cur.fetchall()
    print(f"\n== {q.relative_to(ROOT) if q.is_absolute() else q}: {len(rows)} rows")
    shown = [[("" if v is None else str(v))[:60] for v in r] for r in rows[: args.max_rows]]
    widths = [max(len(c), *(len(r[i]) for r in shown)) if shown else len(c) for i, c in enumerate(cols)]
    print("  " + "  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for r in shown:
        print("  " + "  ".join(v.ljust(w) for v, w in zip(r, widths)))
    if len(rows) > args.max_rows:
        print(f"  … {len(rows) - args.max_rows} more")
    if not rows:
        sys.exit(f"{q}: no rows; is the bucket classified?")
