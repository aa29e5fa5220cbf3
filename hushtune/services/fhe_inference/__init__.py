"""Stateless encrypted inference: compiled catalog circuits run on clients' ciphertexts."""
