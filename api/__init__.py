"""The composition root: FastAPI app factory, routes, schemas, dashboard and the CLI."""
