"""The core the SDK and the services share; it imports nothing of hushtune above it.

Featurization (``features``, ``audio``), the catalog's model spec (``model_spec``), ranking and
the open-set decision (``ranking``), the error tree (``errors``), and the schemes: the packed
CKKS layout (``ckks_scheme``), LWE PIR and the landmark-hash bag (``lwe_pir``), and the
Concrete runtime's process life cycle (``concrete_runtime``).
"""
