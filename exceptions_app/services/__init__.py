"""Business rules: one service function per action, one transaction each, each audited."""
