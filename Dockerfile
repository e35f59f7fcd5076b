FROM python:3.11-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY scenarios ./scenarios
COPY monitors ./monitors
RUN pip install --no-cache-dir . && useradd --create-home driftwatch
USER driftwatch
WORKDIR /home/driftwatch
ENV LITELLM_LOCAL_MODEL_COST_MAP=True
ENTRYPOINT ["driftwatch"]
CMD ["--help"]
