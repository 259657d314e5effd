FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# Every service runs as this unprivileged user (see USER below).
RUN useradd --create-home --uid 1000 tastebase
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY --chown=tastebase:tastebase . .
# Mount points of docker-compose.yml's named volumes, created here and owned by the user:
# a new named volume copies the owner of the image's directory on first use, so
# `collectstatic` (the `migrate` service, as tastebase) can write STATIC_ROOT.
RUN mkdir -p /app/staticfiles && chown tastebase:tastebase /app /app/staticfiles
USER tastebase
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
