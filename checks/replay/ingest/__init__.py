"""Embedded executor for Elastic ingest-pipeline definitions (a documented subset; see docs/ingest-subset.md)."""
