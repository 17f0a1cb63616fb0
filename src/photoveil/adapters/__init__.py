"""One small adapter per AWS service; each takes ``client=None`` so tests and the local stack can swap it."""
