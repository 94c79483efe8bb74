# syntax=docker/dockerfile:1
# AP Intake application image. One image runs every role: web (gunicorn),
# the Celery workers, beat and the one-shot migrate job; docker-compose.yml
# picks the role with `command:`. See docs/deployment.md.

FROM python:3.11-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# Dependencies in their own stage and layer: a code change does not reinstall
# them. Every runtime dependency ships as a wheel, so no compiler is needed.
FROM base AS dependencies
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN pip install -r /tmp/requirements.txt

FROM base AS runtime
# Run-time system packages: Pango, HarfBuzz and a font for WeasyPrint, which renders body-only invoice
# emails to PDF; OCRmyPDF with Tesseract and the language packs of OCR_LANGUAGES for scans and photos
# (invoices/ocr/; docs/formats.md says how to add a language). Ghostscript and qpdf come with ocrmypdf.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
        libharfbuzz0b libharfbuzz-subset0 fontconfig fonts-dejavu-core \
        ocrmypdf tesseract-ocr tesseract-ocr-eng tesseract-ocr-deu tesseract-ocr-fra tesseract-ocr-ita \
        tesseract-ocr-spa tesseract-ocr-nld \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 apintake \
 && useradd --system --uid 10001 --gid apintake --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin apintake
COPY --from=dependencies /opt/venv /opt/venv

WORKDIR /app
# The code stays owned by root: the app user can read it but not change it.
COPY . /app

# Static files are built into the image (WhiteNoise serves them). Settings
# refuse to load without SECRET_KEY; this throwaway value exists only for this
# command and is not in any layer's environment.
RUN SECRET_KEY=collectstatic-only-not-a-secret python manage.py collectstatic --noinput --verbosity 0

# /data is the shared volume (media, inbox, backups); created here so that a new named
# volume starts out owned by the app user. var/ takes the app's default paths.
RUN mkdir -p /data/media /data/inbox /data/backups /app/var \
 && chown apintake:apintake /data /data/media /data/inbox /data/backups /app/var

USER apintake
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--access-logfile", "-", "--no-control-socket"]
