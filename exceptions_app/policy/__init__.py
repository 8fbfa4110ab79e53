"""Workflow policies: the document's shape, its validation, compilation and evaluation."""
