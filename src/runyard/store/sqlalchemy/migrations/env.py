"""Alembic environment: runs migrations on the connection runyard hands over."""

from __future__ import annotations

from alembic import context

from runyard.store.sqlalchemy.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - runyard always passes a connection
    raise RuntimeError("runyard migrations run through runyard.store.sqlalchemy.engine.migrate")
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
