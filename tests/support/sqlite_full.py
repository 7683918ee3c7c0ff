"""A SQLite store's "disk" made full and given room again, run on the store's own connection and
thread (`SqliteStore.run_raw`): how the tests drive a store that refuses writes."""

from __future__ import annotations

import sqlite3


def fill_up(db: sqlite3.Connection) -> None:
    """No page beyond the current ones, and every free page used."""
    db.execute("CREATE TABLE IF NOT EXISTS filler (pad BLOB)")
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
    for size in (4000, 400, 40, 1):
        while True:
            try:
                db.execute("INSERT INTO filler VALUES (zeroblob(?))", (size,))
            except sqlite3.OperationalError as e:
                assert "full" in str(e)
                break


def make_room(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA max_page_count = 1073741823")
    db.execute("DELETE FROM filler")
