from rest_framework.routers import SimpleRouter

from invoices.api import ExportViewSet, InvoiceViewSet

router = SimpleRouter()
router.register("invoices", InvoiceViewSet, basename="invoice")
router.register("exports", ExportViewSet, basename="export")

urlpatterns = router.urls
