"""The servers: ``keystore`` (evaluation keys on Redis), ``featurizer`` (the catalog builder
and its admin RPCs), ``fhe_inference`` (stateless workers that score ciphertexts), the
``common`` plumbing they share, and ``stack`` (all of them in one process for the demo).

Servicers stay thin over plain Python; they import ``hushtune.core`` and the generated
``hushtune.protos``, never the SDK.
"""
