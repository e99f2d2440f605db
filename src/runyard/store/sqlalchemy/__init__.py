"""The SQLAlchemy implementation of the workspace store (SQLite and PostgreSQL)."""
