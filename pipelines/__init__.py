"""Pipeline definitions, their two targets, hardware profiles, compile/submit and the CLI."""
