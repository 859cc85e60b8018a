# The harness image (docs/deploy.md): `bench` + Locust + the locustfile.  The master
# runs `bench run --expect-workers N`, each worker `locust --worker`: one image for both.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /harness

# Dependencies first, so code edits rebuild only the last layers.  An editable
# install keeps bench/ importable from /harness, where `bench run` finds its
# locustfile (locustfiles/ is not part of the wheel).
COPY pyproject.toml README.md ./
COPY bench ./bench
COPY locustfiles ./locustfiles
COPY thresholds.example.toml ./
RUN pip install -e . \
    && useradd --create-home --uid 1000 bench \
    && mkdir -p /results \
    && chown bench:bench /results

# Run as an unprivileged user; /results is where the master writes (a volume).
USER bench
EXPOSE 5557
CMD ["bench", "--help"]
