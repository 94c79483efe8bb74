"""GET /api/v1/invoices/{id}/pages/{n}.png: permission-checked, out of range 404, broken PDF 422."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Permission
from PIL import Image

from invoices.services import invoice_import_sync
from tests.invoices.einvoice_reference import SAMPLES

pytestmark = [pytest.mark.services, pytest.mark.django_db]

FACTURX = SAMPLES / "facturx-zugferd" / "Facture_FR_BASICWL.pdf"
UBL = SAMPLES / "en16931-ubl" / "ubl-tc434-example1.xml"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def clerk(make_user):
    return make_user("clerk", role="ap_clerk")


def test_the_owner_gets_the_page_as_png_at_the_asked_dpi(clerk, client_for):
    invoice = invoice_import_sync(content=FACTURX.read_bytes(), filename=FACTURX.name, owner=clerk)
    client = client_for(clerk)

    response = client.get(f"/api/v1/invoices/{invoice.pk}/pages/1.png")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert "private" in response["Cache-Control"]
    image = Image.open(io.BytesIO(response.content))
    assert (image.width, image.height) == pytest.approx((1240, 1754), abs=2)  # A4 at 150 dpi

    small = Image.open(io.BytesIO(client.get(f"/api/v1/invoices/{invoice.pk}/pages/1.png?dpi=72").content))
    assert small.width == pytest.approx(595, abs=2)


def test_another_users_invoice_is_404_and_anonymous_is_401(clerk, make_user, client_for, api_client):
    invoice = invoice_import_sync(content=FACTURX.read_bytes(), filename=FACTURX.name, owner=clerk)
    # A user who may view invoices but not the team's sees only their own.
    stranger = make_user("stranger")
    stranger.user_permissions.add(Permission.objects.get(codename="view_invoice", content_type__app_label="invoices"))
    stranger = type(stranger).objects.get(pk=stranger.pk)
    assert stranger.has_perm("invoices.view_invoice") and not stranger.has_perm("invoices.view_all")

    assert client_for(stranger).get(f"/api/v1/invoices/{invoice.pk}/pages/1.png").status_code == 404
    assert api_client.get(f"/api/v1/invoices/{invoice.pk}/pages/1.png").status_code == 401


def test_a_page_out_of_range_is_404_with_the_page_count(clerk, client_for):
    invoice = invoice_import_sync(content=FACTURX.read_bytes(), filename=FACTURX.name, owner=clerk)
    client = client_for(clerk)
    response = client.get(f"/api/v1/invoices/{invoice.pk}/pages/2.png")
    assert response.status_code == 404
    assert "the PDF has 1" in response.json()["detail"]
    assert client.get(f"/api/v1/invoices/{invoice.pk}/pages/0.png").status_code == 404


def test_an_xml_invoice_has_no_pages(clerk, client_for):
    invoice = invoice_import_sync(content=UBL.read_bytes(), filename=UBL.name, owner=clerk)
    response = client_for(clerk).get(f"/api/v1/invoices/{invoice.pk}/pages/1.png")
    assert response.status_code == 404
    assert "not a PDF" in response.json()["detail"]


def test_a_pdf_the_renderer_cannot_open_is_422_with_the_reason(clerk, client_for):
    invoice = invoice_import_sync(content=b"%PDF-1.7\n1 0 obj << broken", filename="broken.pdf", owner=clerk)
    response = client_for(clerk).get(f"/api/v1/invoices/{invoice.pk}/pages/1.png")
    assert response.status_code == 422
    assert response.json()["detail"].startswith("The PDF cannot be displayed")


@pytest.mark.parametrize("dpi", ["10", "301", "lots"])
def test_a_dpi_out_of_range_is_400(clerk, client_for, dpi):
    invoice = invoice_import_sync(content=FACTURX.read_bytes(), filename=FACTURX.name, owner=clerk)
    response = client_for(clerk).get(f"/api/v1/invoices/{invoice.pk}/pages/1.png?dpi={dpi}")
    assert response.status_code == 400
    assert "dpi" in response.json()
