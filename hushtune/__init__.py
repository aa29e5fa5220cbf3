"""hushtune: private song identification, where the servers never learn what you listened to.

The subpackages, from the bottom up (imports only go down this list):

- ``hushtune.protos``: generated gRPC and protobuf code (from ``protos/``), never edited.
- ``hushtune.core``: what the SDK and the services share: audio checks, featurization, the
  model spec, ranking, the error tree and the cryptographic schemes (CKKS layout, LWE PIR).
- ``hushtune.sdk``: the client SDK an app embeds (``from hushtune.sdk import Client``).
- ``hushtune.services``: the keystore, featurizer (catalog builder) and inference servers.
- ``hushtune.cli``: the ``hushtune`` command.
- ``hushtune.bench``: benchmark tooling, not part of the runtime (the ``[bench]`` extra).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hushtune")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"
