"""The throwaway PostgreSQL cluster (tests/pgcluster.py): separate databases, LISTEN/NOTIFY, no TCP."""

from __future__ import annotations

import pytest
from pgcluster import Cluster, find_pg_bin

psycopg = pytest.importorskip("psycopg")


@pytest.fixture(scope="session")
def pg_cluster():
    if find_pg_bin() is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not installed")
    cluster = Cluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


def test_databases_are_separate(pg_cluster):
    a, b = pg_cluster.new_database(), pg_cluster.new_database()
    assert a != b
    with psycopg.connect(a, autocommit=True) as conn:
        conn.execute("CREATE TABLE only_in_a (id int)")
        conn.execute("INSERT INTO only_in_a VALUES (1)")
        assert conn.execute("SELECT count(*) FROM only_in_a").fetchone() == (1,)
    with psycopg.connect(b, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('only_in_a')").fetchone() == (None,)


def test_listen_notify_over_unix_socket(pg_cluster):
    url = pg_cluster.new_database("notify")
    with psycopg.connect(url, autocommit=True) as listener, psycopg.connect(url, autocommit=True) as sender:
        assert listener.info.host == str(pg_cluster.socket_dir)
        listener.execute("LISTEN x")
        sender.execute("NOTIFY x, 'hi'")
        note = next(listener.notifies(timeout=5))
    assert (note.channel, note.payload) == ("x", "hi")


def test_no_tcp(pg_cluster):
    with psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("",)
        assert conn.execute("SELECT inet_server_addr()").fetchone() == (None,)  # NULL over a Unix socket
