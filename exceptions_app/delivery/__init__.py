"""Getting resolutions back to execution: URL safety, signing, sending, retry policy."""
