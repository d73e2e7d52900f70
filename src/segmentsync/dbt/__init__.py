"""dbt models as segments: reading a dbt project's ``target/manifest.json`` (no dbt needed)."""
