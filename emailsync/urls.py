from rest_framework.routers import SimpleRouter

from emailsync.api import MailboxViewSet

router = SimpleRouter()
router.register("mailboxes", MailboxViewSet, basename="mailbox")

urlpatterns = router.urls
