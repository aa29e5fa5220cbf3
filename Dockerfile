# One image for every hushtune service; the command picks the service.
FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsndfile1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt ./
RUN pip install -r requirements.txt
COPY pyproject.toml ./
COPY hushtune ./hushtune
RUN pip install --no-deps .

RUN useradd --create-home --uid 10001 hushtune \
    && install -d -o hushtune -g hushtune /home/hushtune/features
USER hushtune
ENV HUSHTUNE_HOST=0.0.0.0 HUSHTUNE_DATA_DIR=/home/hushtune/data
ENTRYPOINT ["hushtune"]
CMD ["serve"]
