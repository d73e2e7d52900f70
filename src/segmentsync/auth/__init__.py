"""Users, roles, API tokens, sessions and the one RBAC policy table."""
