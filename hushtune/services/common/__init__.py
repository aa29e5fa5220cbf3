"""Pieces every hushtune service shares: configuration, Redis, server set-up, errors, logs."""
