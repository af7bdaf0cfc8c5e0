#!/usr/bin/env python3
"""The same-run baseline of bench/run: the plainest copy of the same records.

One Python http.server process serves the records file (JSON lines, one
record per line: {"id": ..., "values": {...}}) on loopback; a second Python
process reads the response line by line and inserts every record as
(id TEXT PRIMARY KEY, values TEXT) into a fresh SQLite file with
executemany in one transaction, WAL off, default pragmas. Fixed on purpose
(nothing here is tuned or changed between runs) so that it cannot drift:
its records per second stand for what copying this data costs on this
machine today.

With --postgres URL the second process loads into PostgreSQL instead: the
same records, parsed and serialised the same way, streamed as text rows
into one `psql` running CREATE TABLE records (id TEXT PRIMARY KEY, "values"
TEXT), COPY records FROM STDIN and the count, in the database at URL (a
fresh one: bench/driver/postgres.rs creates and drops it).

Usage: baseline.py [--postgres URL] RECORDS.jsonl   (prints one JSON object)
"""

import json
import os
import subprocess
import sys
import tempfile

SERVER = r"""
import http.server, sys
path = sys.argv[1]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        size = __import__("os").path.getsize(path)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        with open(path, "rb") as f:
            while True:
                chunk = f.read(1 << 16)
                if not chunk:
                    break
                self.wfile.write(chunk)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""

CLIENT = r"""
import json, sqlite3, sys, time, urllib.request
url, db = sys.argv[1], sys.argv[2]
started = time.perf_counter()
conn = sqlite3.connect(db)
conn.execute("PRAGMA journal_mode=DELETE")
conn.execute("CREATE TABLE records (id TEXT PRIMARY KEY, \"values\" TEXT)")
def rows():
    with urllib.request.urlopen(url) as response:
        for line in response:
            record = json.loads(line)
            yield (record["id"], json.dumps(record["values"]))
with conn:
    conn.executemany("INSERT INTO records (id, \"values\") VALUES (?, ?)", rows())
count = conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]
conn.close()
print(json.dumps({"records": count, "seconds": time.perf_counter() - started}))
"""

CLIENT_PG = r"""
import json, subprocess, sys, time, urllib.request
url, db = sys.argv[1], sys.argv[2]
started = time.perf_counter()
psql = subprocess.Popen(
    ["psql", db, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
     "-c", 'CREATE TABLE records (id TEXT PRIMARY KEY, "values" TEXT)',
     "-c", 'COPY records (id, "values") FROM STDIN',
     "-c", "SELECT COUNT(*) FROM records"],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8")
def text(value):
    return (value.replace("\\", "\\\\").replace("\t", "\\t")
            .replace("\n", "\\n").replace("\r", "\\r"))
with urllib.request.urlopen(url) as response:
    for line in response:
        record = json.loads(line)
        psql.stdin.write(text(record["id"]) + "\t" + text(json.dumps(record["values"])) + "\n")
out, _ = psql.communicate()
if psql.returncode != 0:
    sys.exit(f"psql failed ({psql.returncode})")
count = int(out.split()[-1])
print(json.dumps({"records": count, "seconds": time.perf_counter() - started}))
"""


def main():
    args = sys.argv[1:]
    client, target = CLIENT, None
    if args[:1] == ["--postgres"] and len(args) == 3:
        client, target, args = CLIENT_PG, args[1], args[2:]
    if len(args) != 1:
        sys.exit(__doc__)
    path = args[0]
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, path], stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(server.stdout.readline())
        with tempfile.TemporaryDirectory() as scratch:
            db = target or os.path.join(scratch, "baseline.db")
            out = subprocess.run(
                [sys.executable, "-c", client, f"http://127.0.0.1:{port}/", db],
                check=True,
                stdout=subprocess.PIPE,
                text=True,
            )
        result = json.loads(out.stdout)
        result["records_per_sec"] = result["records"] / result["seconds"]
        print(json.dumps(result))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
