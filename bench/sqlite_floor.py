#!/usr/bin/env python3
"""What SQLite alone takes for the incremental scenario's writes.

Builds a destination database with fedsync's own migrations and 200,000
synced records with their links (the bench's records, about 400 bytes of
values each), then runs what the destination runs for
the incremental scenario (2,200 updated records spread over the module,
pages of 500): per page, the link lookup and the record read, the record
upserts and the link touches in one statement each, one commit. Prints the
time of each step, three rounds, each on a fresh copy.

    python3 bench/sqlite_floor.py [--records N] [--json] [DIR]
        N: the module's records (default 200,000; 1% + 0.1% of them change)
        --json: one JSON line at the end, {"rounds_ms": [...], "median_ms": ...}
        DIR: scratch directory (default a temp one)

The bench driver runs it beside the incremental scenario (bench/README.md).
"""
import json, os, shutil, sqlite3, sys, tempfile, time
from pathlib import Path

N, PAGE, ROWS = 200_000, 500, 1000  # ROWS: ROWS_PER_STATEMENT in src/store/records_sql.rs
MIGRATIONS = Path(__file__).resolve().parent.parent / "src/store/sqlite/migrations"


def build(path, N):
    db = sqlite3.connect(path)
    for migration in sorted(MIGRATIONS.glob("*.sql")):
        db.executescript(migration.read_text())
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA foreign_keys=OFF")

    tags = ["red", "green", "blue", "amber", "violet"]

    def values(i):
        """The bench's record i (`record` in bench/driver/data.rs), as the daemon stores it."""
        return json.dumps({
            "age": [str(18 + i % 70)], "email": [f"person{i}@example.org"],
            "joined": [f"20{10 + i % 15:02}-{1 + i % 12:02}-{1 + i % 28:02}T{i % 24:02}:{i % 60:02}:00Z"],
            "name": [f"Person {i:07} v0"],
            "notes": [f"Generated for the fedsync benchmark, record {i}, generation 0. "
                      "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor."],
            "phone": [f"+386 1 555 {i % 10000:04}"], "score": [f"{i % 100}.{i % 10}"],
            "tags": [tags[i % 5], tags[(i // 5) % 5]], "vip": ["1" if i % 7 == 0 else "0"],
            "website": [f"https://example.org/people/{i}"]}, separators=(",", ":"))
    db.executemany(
        'INSERT INTO local_records (id, module_id, "values", origin_node_id, created_at, '
        "updated_at, deleted_at, changed_at, revision) VALUES (?, 7, ?, 3, 1, 1, NULL, ?, 1)",
        ((1_000_000 + i, values(i), 1000 + i) for i in range(N)))
    db.executemany("INSERT INTO record_links VALUES (3, 9, ?, 7, ?, 1, 1, 1, 0)",
                   ((5_000_000 + i, 1_000_000 + i) for i in range(N)))
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def statements(count, row, conflict):
    return row[0] + ",".join([row[1]] * count) + conflict


def changed_count(N):
    """The records the incremental scenario changes: 1% updated, 0.1% deleted."""
    return N // 100 + N // 1000


def round_(path, N):
    CHANGED = changed_count(N)
    db = sqlite3.connect(path, isolation_level=None)
    # fedsync's settings (src/store/sqlite/mod.rs); its background task
    # checkpoints the log outside the timed commits.
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA wal_autocheckpoint=16384")
    db.execute("PRAGMA temp_store=MEMORY")
    chosen = list(range(0, N, N // CHANGED))[:CHANGED]
    spent = dict(lookup=0.0, records=0.0, links=0.0, commit=0.0)
    ids = "SELECT CAST(value AS INTEGER) FROM json_each('[' || ? || ']')"
    for p in range(0, len(chosen), PAGE):
        t0 = time.perf_counter()
        origin = ",".join(str(5_000_000 + i) for i in chosen[p:p + PAGE])
        links = db.execute("SELECT * FROM record_links WHERE node_id = 3 AND exposed_module_id = 9 "
                           f"AND origin_record_id IN ({ids})", (origin,)).fetchall()
        local = [link[4] for link in links]
        records = db.execute(f"SELECT * FROM local_records WHERE id >= ? AND id <= ? AND id IN ({ids})",
                             (min(local), max(local), ",".join(map(str, local)))).fetchall()
        t1 = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        changed = db.execute("SELECT MAX(changed_at) FROM local_records WHERE module_id = 7").fetchone()[0]
        for k in range(0, len(records), ROWS):
            chunk, args = records[k:k + ROWS], []
            for r in chunk:
                changed += 1
                args += [r[0], 7, r[2].replace(" v0", " v1"), 3, 1, 2, None, changed]
            db.execute(statements(len(chunk), (
                'INSERT INTO local_records (id, module_id, "values", origin_node_id, created_at, '
                "updated_at, deleted_at, changed_at, revision) VALUES ", "(?, ?, ?, ?, ?, ?, ?, ?, 1)"),
                ' ON CONFLICT (id) DO UPDATE SET "values" = excluded."values", updated_at = '
                "excluded.updated_at, deleted_at = excluded.deleted_at, changed_at = excluded.changed_at, "
                "revision = local_records.revision + 1 RETURNING id, revision"), args).fetchall()
        t2 = time.perf_counter()
        for k in range(0, len(links), ROWS):
            chunk, args = links[k:k + ROWS], []
            for link in chunk:
                args += [3, 9, link[2], 7, link[4], 5, 1, 5]
            db.execute(statements(len(chunk), (
                "INSERT INTO record_links (node_id, exposed_module_id, origin_record_id, local_module_id, "
                "local_record_id, origin_changed_at, created_at, updated_at, seen_run) VALUES ",
                "(?, ?, ?, ?, ?, ?, ?, ?, 0)"),
                " ON CONFLICT (node_id, origin_record_id, exposed_module_id) DO UPDATE SET "
                "origin_changed_at = excluded.origin_changed_at, updated_at = excluded.updated_at"), args)
        t3 = time.perf_counter()
        db.execute("COMMIT")
        t4 = time.perf_counter()
        for key, took in zip(spent, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            spent[key] += took
    db.close()
    return spent


def main():
    args, as_json, n = sys.argv[1:], False, N
    if "--json" in args:
        args.remove("--json")
        as_json = True
    if "--records" in args:
        k = args.index("--records")
        n = int(args[k + 1])
        del args[k:k + 2]
    scratch = Path(args[0] if args else tempfile.mkdtemp(prefix="fedsync-floor-"))
    scratch.mkdir(parents=True, exist_ok=True)
    base, copy = scratch / f"base-{n}.db", scratch / "round.db"
    if not base.exists():
        build(base, n)
    rounds = []
    for _ in range(3):
        for suffix in ("", "-wal", "-shm"):
            Path(str(copy) + suffix).unlink(missing_ok=True)
        shutil.copy(base, copy)
        spent = round_(copy, n)
        total = sum(spent.values())
        rounds.append(total * 1000)
        print(f"{changed_count(n)} updated records of {n}: {total * 1000:.1f} ms  (" +
              ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in spent.items()) + ")")
    if as_json:
        print(json.dumps({"rounds_ms": rounds, "median_ms": sorted(rounds)[1]}))


if __name__ == "__main__":
    main()
