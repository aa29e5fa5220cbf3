# One image for every hushtune service; the command picks the service.
#
# EXTRAS: the package's extras the image installs (docs/INSTALL.md). The one image runs the
# featurizer, which builds catalogs (concrete-ml: [build]), and the inference workers, which
# load Concrete server circuits with concrete-ml today; so the default is server,build. The
# benchmark tools are not in the image (.dockerignore leaves hushtune/bench out).
# Versions are those of requirements-dev.lock, the set CI tests (used as constraints here).
#
# torch: concrete-ml pins torch 2.3.1, whose Linux x86_64 wheel on PyPI is a CUDA build
# (about 4.5 GB with its nvidia-* libraries). A CPU build of the same version is on PyTorch's
# own index; to take it, build with
#   --build-arg PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
# (not tried on the development machines, which have no Docker engine nor that index).
FROM python:3.11.7-slim-bookworm

ARG EXTRAS=server,build
ARG PIP_EXTRA_INDEX_URL=
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsndfile1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# Dependencies first (a layer that survives code changes): an empty package stands in for the
# code while pip resolves the extras against the lock's versions.
COPY pyproject.toml requirements-dev.lock ./
RUN sed -e '/--hash=/d' -e 's/ \\$//' requirements-dev.lock >/tmp/constraints.txt \
    && mkdir hushtune && touch hushtune/__init__.py \
    && pip install -c /tmp/constraints.txt ".[${EXTRAS}]" \
    && pip uninstall -y hushtune && rm -rf hushtune build /tmp/constraints.txt
COPY hushtune ./hushtune
RUN pip install --no-deps .

RUN useradd --create-home --uid 10001 hushtune \
    && install -d -o hushtune -g hushtune /home/hushtune/features
USER hushtune
ENV HUSHTUNE_HOST=0.0.0.0 HUSHTUNE_DATA_DIR=/home/hushtune/data
ENTRYPOINT ["hushtune"]
CMD ["serve"]
