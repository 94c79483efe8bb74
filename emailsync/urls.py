from rest_framework.routers import SimpleRouter

from emailsync.api import MailboxViewSet, MailRuleViewSet

router = SimpleRouter()
router.register("mailboxes", MailboxViewSet, basename="mailbox")
router.register("mail-rules", MailRuleViewSet, basename="mail-rule")

urlpatterns = router.urls
