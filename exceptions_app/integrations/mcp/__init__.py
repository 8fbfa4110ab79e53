"""The MCP server: ``tools.py`` (the four tools, on the services and the wait hub), ``http.py`` (the
streamable HTTP transport at ``/mcp``, mounted in ``exceptions_app/asgi.py``) and ``stdio.py`` (the
``tollgate-mcp`` console script, a stdio proxy to a server's ``/mcp``)."""
