"""The store: SQLModel tables, database engines, migrations and the repository."""
