"""Configuration as code: export, plan and apply the whole configuration as a YAML file."""
