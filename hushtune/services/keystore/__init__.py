"""Keystore service: keeps clients' evaluation keys in Redis and serves them by opaque key id."""
