# One image for every Python service of the lab; docker-compose.yml picks the module per service.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY lab_common lab_common
COPY facade_service facade_service
COPY logging_service logging_service
COPY messages_service messages_service
COPY config_server config_server
COPY scripts scripts
# the services' dependencies only: the tools' extra (.[tools]: matplotlib, docker, psutil) stays out of the image
RUN pip install --no-cache-dir .
ENV PYTHONUNBUFFERED=1 LAB_HOST=0.0.0.0
