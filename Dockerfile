# driftwatch: the collector (`driftwatch serve`) by default, or any other command.
#
#   docker build -t driftwatch .
#   docker run -p 4318:4318 -e DRIFTWATCH_TOKEN=change-me -v dw:/data driftwatch
#   docker run -v dw:/data driftwatch sql "select * from violations"   # while it is stopped
#
# Inside a container the collector must listen on 0.0.0.0 to be reachable, so it needs a
# token (clients send `Authorization: Bearer $DRIFTWATCH_TOKEN`): the default command
# refuses to start without one.
#
# Scenario runs (`run`, `batch`) give the agent's `bash` tool a bubblewrap sandbox, which
# creates user namespaces. Docker's default seccomp profile (and AppArmor on some hosts)
# forbids that, and the sandbox then stops with a one-line error: run such commands with
#   docker run --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
#     --security-opt systempaths=unconfined ...
# (docs/security.md). The collector itself needs neither.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    DRIFTWATCH_DB=/data/driftwatch.duckdb

WORKDIR /app

# Dependencies first, in their own layer: a source change does not reinstall them.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['collector']))" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY src ./src
COPY scenarios ./scenarios
COPY monitors ./monitors
RUN pip install --no-cache-dir --no-deps . \
    && useradd --create-home --uid 10001 driftwatch \
    && mkdir -p /data \
    && chown driftwatch:driftwatch /data

USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 4318
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4318/healthz', timeout=4)"]
ENTRYPOINT ["driftwatch"]
CMD ["serve", "--host", "0.0.0.0", "--port", "4318"]
