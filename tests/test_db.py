"""mbg.db: creation, identity checks, refusal of foreign and newer files."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from mbg import db
from mbg.errors import NotOurFileError, SchemaTooNewError

from .conftest import call_rows, make_dataset


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_new_dataset_has_identity_wal_and_schema(tmp_path):
    path = tmp_path / "2009-10-01.db"
    db.connect(path, "dataset", create=True).close()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA application_id").fetchone()[0] == db.APPLICATION_IDS["dataset"]
    assert con.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSIONS["dataset"]
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"telephony_log", "telephony_cost", "telephony_unrated", "telephony_counter"} <= tables
    assert not path.stat().st_mode & 0o002


def test_duplicate_content_is_stored_once(tmp_path):
    rows = call_rows(10)
    path = make_dataset(tmp_path / "d.db", rows + rows[:4])
    con = sqlite3.connect(path)
    assert con.execute("SELECT count(*) FROM telephony_log").fetchone()[0] == 10


def test_foreign_sqlite_file_is_refused_and_untouched(tmp_path):
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    before = digest(path)
    with pytest.raises(NotOurFileError, match="not an mbg file"):
        db.connect(path, "dataset", create=True)
    assert digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


def test_text_file_is_refused(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("hello\n")
    with pytest.raises(NotOurFileError, match="not an SQLite database"):
        db.connect(path, "dataset", create=True)
    assert path.read_text() == "hello\n"


def test_billing_file_is_not_a_dataset(tmp_path):
    path = tmp_path / "billing.db"
    db.connect(path, "billing", create=True).close()
    with pytest.raises(NotOurFileError, match="an mbg billing file, expected an mbg dataset"):
        db.connect(path, "dataset")


def test_newer_schema_is_refused_and_untouched(tmp_path):
    path = make_dataset(tmp_path / "d.db", call_rows(3))
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version={db.SCHEMA_VERSIONS['dataset'] + 1}")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    before = digest(path)
    with pytest.raises(SchemaTooNewError, match="newer than this mbg knows"):
        db.connect(path, "dataset")
    with pytest.raises(SchemaTooNewError):
        db.connect(path, "dataset", readonly=True)
    assert digest(path) == before


def test_missing_file_without_create(tmp_path):
    with pytest.raises(NotOurFileError, match="no such dataset file"):
        db.connect(tmp_path / "none.db", "dataset")
    assert not (tmp_path / "none.db").exists()


def test_write_transaction_rolls_back_on_error(tmp_path):
    path = make_dataset(tmp_path / "d.db", call_rows(5))
    conn = db.connect(path, "dataset")
    with pytest.raises(RuntimeError):
        with db.write_transaction(conn):
            conn.execute("DELETE FROM telephony_log")
            raise RuntimeError("boom")
    assert conn.execute("SELECT count(*) FROM telephony_log").fetchall()[0][0] == 5
    assert conn.getautocommit()
