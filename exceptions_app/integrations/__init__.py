"""Tollgate spoken in the agents' own protocols (MCP; see docs/integrations/)."""
