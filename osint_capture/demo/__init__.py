"""``osint-capture demo`` and the bundled sample post site it captures."""
