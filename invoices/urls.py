from django.urls import path
from rest_framework.routers import SimpleRouter

from invoices.api import ExportViewSet, InvoiceViewSet
from invoices.page_api import InvoicePageImageView

router = SimpleRouter()
router.register("invoices", InvoiceViewSet, basename="invoice")
router.register("exports", ExportViewSet, basename="export")

urlpatterns = [
    path("invoices/<int:pk>/pages/<int:page>.png", InvoicePageImageView.as_view(), name="invoice-page-image"),
    *router.urls,
]
