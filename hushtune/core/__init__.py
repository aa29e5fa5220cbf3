"""The core the SDK and the services share; it imports nothing of hushtune above it.

Featurization (``features``, ``audio``), the catalog's model spec (``model_spec``), ranking and
the open-set decision (``ranking``), the error tree (``errors``), and the schemes: the packed
CKKS layout (``ckks_scheme``), LWE PIR and the landmark-hash bag (``lwe_pir``), the client half
of a Concrete circuit over the Concrete runtime alone (``concrete_client``) and what it shares
with the worker's half (``concrete_runtime``), and issue 14's landmark fingerprints and records
(``landmarks``) with the public spec and two-stage decision built on them (``evidence``).
"""
