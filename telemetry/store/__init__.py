"""All SQL of the project: schema migrations, TimescaleDB features, the registry and
alert reads and writes (async, for the API) and the ingest path's writes (sync, for the
pipeline). The rest of the code calls these functions and never composes SQL."""
