FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY exceptions_app ./exceptions_app
COPY review ./review
RUN pip install .

COPY . .
RUN SECRET_KEY=build-only python manage.py collectstatic --no-input --verbosity 0 \
    && useradd --create-home --uid 1000 tollgate && mkdir -p /app/data && chown tollgate /app/data
USER tollgate

EXPOSE 8000
CMD ["gunicorn", "exceptions_app.asgi:application", "--bind", "0.0.0.0:8000", "--worker-class", "uvicorn_worker.UvicornWorker", "--workers", "2", "--keep-alive", "30"]
