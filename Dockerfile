# One image for both the server (`scada run`) and the plant simulator (`scada simulate`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

RUN useradd --system --create-home --home-dir /var/lib/scada scada
WORKDIR /opt/scada

COPY pyproject.toml README.md ./
COPY scada ./scada
COPY drivers ./drivers
COPY alarms ./alarms
COPY historian ./historian
COPY hmi ./hmi
COPY simulator ./simulator
COPY examples ./examples
RUN pip install --no-compile . && mkdir -p /etc/scada && cp examples/plating-line.yaml /etc/scada/plant.yaml

USER scada
WORKDIR /var/lib/scada
EXPOSE 8000
CMD ["scada", "run", "--config", "/etc/scada/plant.yaml", "--host", "0.0.0.0", "--port", "8000"]
