"""Proves the `db_url` fixture: a fresh, writable database on SQLite and on PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa


def test_db_url_is_fresh_and_writable(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    try:
        assert sa.inspect(engine).get_table_names() == []
        meta = sa.MetaData()
        table = sa.Table(
            "probe",
            meta,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("name", sa.String(50), nullable=False),
        )
        meta.create_all(engine)
        with engine.begin() as conn:
            conn.execute(table.insert().values(id=1, name="runyard"))
        with engine.connect() as conn:
            assert conn.execute(sa.select(table.c.name)).scalar_one() == "runyard"
        assert engine.dialect.name == db_url.split(":")[0].split("+")[0]
    finally:
        engine.dispose()
