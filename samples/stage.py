#!/usr/bin/env python3
"""Copy the sample calls into a directory laid out as a Contact Lens bucket.

The files in samples/calls/ use '_' for ':' in their time stamps (as the STAR-derived set does),
because ':' is awkward in file names on some systems. Contact Lens keys contain ':'. This script
writes each call to DEST/<prefix>Analysis/Voice/Redacted/YYYY/MM/DD/<id>_analysis_redacted_<ISO ts>.json,
the key the events in samples/events/ refer to, e.g. for a local-directory bucket:

    python3 samples/stage.py local-bucket               # every call
    python3 samples/stage.py local-bucket --only events # just the call the events name
    python3 samples/stage.py /tmp/x --prefix connect/example-instance/

Python 3 standard library only.
"""

import argparse
import csv
import json
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dest", type=Path)
    ap.add_argument("--prefix", default="", help="key prefix before Analysis/, e.g. connect/<instance-alias>/")
    ap.add_argument("--only", choices=["all", "events", "train", "test"], default="all")
    args = ap.parse_args()

    event_key = json.loads((HERE / "events" / "eventbridge-object-created.json").read_text())["detail"]["object"]["key"]
    n = 0
    with open(HERE / "manifest.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if args.only in ("train", "test") and row["split"] != args.only:
                continue
            if args.only == "events" and row["s3_key"] != event_key:
                continue
            target = args.dest / (args.prefix + row["s3_key"])
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(HERE / row["file"], target)
            n += 1
    print(f"staged {n} calls under {args.dest}")


if __name__ == "__main__":
    main()
