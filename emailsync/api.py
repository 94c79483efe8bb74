"""REST API: /api/v1/mailboxes/. The secret is write-only and never returned."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db.models import Sum
from django.db.models.functions import TruncDate
from django.shortcuts import redirect
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import DjangoModelPermissions, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from core.actors import require_permission
from core.api import actor_for
from core.errors import NotAllowed
from emailsync.models import Mailbox, MailRule, OAuthAuthorization, SyncRun
from emailsync.oauth_connect import OAuthConnectError, oauth_finish, oauth_start
from emailsync.selectors import mailboxes_visible_to
from emailsync.services import (
    MAILBOX_FIELDS,
    RULE_FIELDS,
    RULES_TEST_MAX,
    mail_rule_delete,
    mail_rule_save,
    mailbox_active_sync,
    mailbox_cancel_sync,
    mailbox_delete,
    mailbox_rules_test,
    mailbox_save,
    mailbox_sync_enqueue,
    mailbox_test_connection,
)
from jobs.api import JobSerializer, job_as_seen_by, job_started
from jobs.models import Job


class MailboxSerializer(serializers.ModelSerializer):
    secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=False,
        style={"input_type": "password"},
        help_text="Password, app password or OAuth2 access token. Write-only.",
    )
    refresh_token = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=False,
        help_text="OAuth2 refresh token (XOAUTH2 mailboxes). Write-only.",
    )
    has_secret = serializers.BooleanField(read_only=True)
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Mailbox
        fields = [
            "id",
            *MAILBOX_FIELDS,
            "secret",
            "refresh_token",
            "has_secret",
            "owner",
            "needs_attention",
            "reconnect_required",
            "last_error",
            "last_sync_at",
            "created_at",
        ]
        read_only_fields = ["needs_attention", "reconnect_required", "last_error", "last_sync_at", "created_at"]

    def validate_folders(self, folders):
        if not isinstance(folders, list) or not all(isinstance(f, str) and f.strip() for f in folders):
            raise serializers.ValidationError('A list of folder names, e.g. ["INBOX"].')
        return [f.strip() for f in folders]

    def validate(self, attrs):
        if self.instance is None and not attrs.get("secret"):
            raise serializers.ValidationError({"secret": "A new mailbox needs its password or token."})
        return attrs


class SyncRequestSerializer(serializers.Serializer):
    months = serializers.IntegerField(min_value=1, max_value=120, required=False)
    folders = serializers.ListField(child=serializers.CharField(max_length=200), required=False, allow_empty=False)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class OAuthStartSerializer(serializers.Serializer):
    provider = serializers.ChoiceField(choices=["google", "microsoft"])
    mailbox = serializers.IntegerField(
        required=False, min_value=1, help_text="Reconnect this mailbox (default: connect a new account)."
    )


class GroupSyncRequestSerializer(serializers.Serializer):
    months = serializers.IntegerField(min_value=1, max_value=120, required=False)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class RulesTestRequestSerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=RULES_TEST_MAX, default=20)


class MailRuleSerializer(serializers.ModelSerializer):
    mailbox = serializers.PrimaryKeyRelatedField(queryset=Mailbox.objects.all())
    invoice_owner = serializers.SlugRelatedField(
        slug_field="username", allow_null=True, required=False, queryset=get_user_model().objects.all()
    )

    class Meta:
        model = MailRule
        fields = ["id", "mailbox", *RULE_FIELDS, "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    def validate_mailbox(self, mailbox):
        if not mailboxes_visible_to(self.context["request"].user).filter(pk=mailbox.pk).exists():
            raise serializers.ValidationError("No such mailbox.")  # others' mailboxes are invisible
        if self.instance is not None and mailbox.pk != self.instance.mailbox_id:
            raise serializers.ValidationError("A rule cannot move to another mailbox.")
        return mailbox


class SyncRunSerializer(serializers.ModelSerializer):
    job_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = SyncRun
        fields = ["id", "job_id", "status", "started_at", "finished_at", *SyncRun.COUNT_FIELDS, "error"]


class MailboxPermissions(DjangoModelPermissions):
    """Model permissions for the CRUD calls (reading needs view_mailbox too); the
    sync actions need view_mailbox here and their own permission in the service."""

    perms_map = {**DjangoModelPermissions.perms_map, "GET": ["%(app_label)s.view_%(model_name)s"]}
    ACTIONS = {
        "sync",
        "sync_groups",
        "cancel_sync",
        "test",
        "sync_status",
        "history",
        "statistics",
        "test_rules",
        "oauth_start",
        "oauth_callback",
    }

    def has_permission(self, request, view):
        if getattr(view, "action", None) in self.ACTIONS:
            return request.user.is_authenticated and request.user.has_perm("emailsync.view_mailbox")
        return super().has_permission(request, view)


class MailboxViewSet(viewsets.ModelViewSet):
    """Mailboxes you own (staff: all). The secret is write-only."""

    serializer_class = MailboxSerializer
    permission_classes = [IsAuthenticated, MailboxPermissions]
    throttle_scope = "trigger"

    queryset = Mailbox.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Mailbox.objects.none()
        return mailboxes_visible_to(self.request.user).order_by("name")

    def get_throttles(self):
        if self.action in ("sync", "sync_groups", "cancel_sync", "test", "test_rules"):
            return [*super().get_throttles(), ScopedRateThrottle()]
        return super().get_throttles()

    def _save(self, serializer, mailbox=None):
        data = dict(serializer.validated_data)
        secret, refresh = data.pop("secret", None), data.pop("refresh_token", None)
        return mailbox_save(
            actor=actor_for(self.request), mailbox=mailbox, secret=secret, refresh_token=refresh, **data
        )

    def perform_create(self, serializer):
        serializer.instance = self._save(serializer)

    def perform_update(self, serializer):
        serializer.instance = self._save(serializer, mailbox=serializer.instance)

    def perform_destroy(self, instance):
        mailbox_delete(mailbox=instance, actor=actor_for(self.request))

    @extend_schema(
        request=SyncRequestSerializer,
        responses={
            202: JobSerializer,
            409: OpenApiResponse(JobSerializer, description="A sync of this mailbox is active."),
        },
    )
    @action(detail=True, methods=["post"])
    def sync(self, request, pk=None):
        """Scan the mailbox now (one active sync per mailbox)."""
        mailbox = self.get_object()
        body = SyncRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = mailbox_sync_enqueue(
            mailbox=mailbox,
            actor=actor_for(request),
            months=body.validated_data.get("months"),
            folders=body.validated_data.get("folders"),
            reason=body.validated_data["reason"],
        )
        return job_started(job, request, self.get_serializer_context())

    @extend_schema(
        request=OAuthStartSerializer,
        responses={
            200: OpenApiResponse(
                description='{"authorization_url"}: send the user there; the provider comes back to oauth/callback/.'
            )
        },
    )
    @action(detail=False, methods=["post"], url_path="oauth/start")
    def oauth_start(self, request):
        """Connect (or reconnect) a Google or Microsoft account with OAuth (authorization code + PKCE)."""
        body = OAuthStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        mailbox = None
        if body.validated_data.get("mailbox"):
            mailbox = self.get_queryset().filter(pk=body.validated_data["mailbox"]).first()
            if mailbox is None:
                return Response({"mailbox": ["No such mailbox."]}, status=status.HTTP_400_BAD_REQUEST)
        try:
            url = oauth_start(
                actor=actor_for(request),
                provider=body.validated_data["provider"],
                redirect_uri=oauth_redirect_uri(request),
                mailbox=mailbox,
                source="api",
            )
        except OAuthConnectError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"authorization_url": url})

    @extend_schema(
        parameters=[
            OpenApiParameter(name, str, required=False) for name in ("state", "code", "error", "error_description")
        ],
        responses={
            200: OpenApiResponse(description='{"mailbox": {...}, "created": bool}'),
            400: OpenApiResponse(description='{"detail": why the connect failed}'),
        },
    )
    @action(detail=False, methods=["get"], url_path="oauth/callback")
    def oauth_callback(self, request):
        """Where the provider sends the browser back: checks state, exchanges the code, stores the tokens."""
        query = request.query_params
        try:
            mailbox, created = oauth_finish(
                actor=actor_for(request),
                state=query.get("state", ""),
                code=query.get("code", ""),
                error=query.get("error", ""),
                error_description=query.get("error_description", ""),
            )
        except OAuthConnectError as exc:
            attempt_source = _attempt_source(query.get("state", ""))
            if attempt_source == "admin":
                messages.error(request._request, str(exc))
                return redirect("admin:emailsync_mailbox_changelist")
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        if _attempt_source(query.get("state", "")) == "admin":
            messages.success(
                request._request, f"{mailbox}: {'connected' if created else 'reconnected'} as {mailbox.username}."
            )
            return redirect("admin:emailsync_mailbox_change", mailbox.pk)
        return Response(
            {"mailbox": MailboxSerializer(mailbox, context=self.get_serializer_context()).data, "created": created}
        )

    @extend_schema(
        request=GroupSyncRequestSerializer,
        responses={
            202: JobSerializer,
            409: OpenApiResponse(JobSerializer, description="A sync of this mailbox is active."),
        },
    )
    @action(detail=True, methods=["post"], url_path="sync-groups")
    def sync_groups(self, request, pk=None):
        """Scan the shared and other users' folders (IMAP NAMESPACE) this mailbox may read."""
        mailbox = self.get_object()
        body = GroupSyncRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = mailbox_sync_enqueue(
            mailbox=mailbox,
            actor=actor_for(request),
            months=body.validated_data.get("months"),
            groups=True,
            reason=body.validated_data["reason"],
        )
        return job_started(job, request, self.get_serializer_context())

    @extend_schema(
        responses={
            200: OpenApiResponse(
                description="The active or last sync job, with progress and ETA, and the last run's counts."
            )
        }
    )
    @action(detail=True, methods=["get"], url_path="sync-status")
    def sync_status(self, request, pk=None):
        mailbox = self.get_object()
        job = mailbox_active_sync(mailbox) or _last_sync_job(mailbox)
        last_run = mailbox.sync_runs.first()
        return Response(
            {
                "mailbox": mailbox.name,
                "active": job is not None and job.is_active,
                "job": job_as_seen_by(job, request, self.get_serializer_context()) if job else None,
                "last_run": SyncRunSerializer(last_run).data if last_run else None,
                "needs_attention": mailbox.needs_attention,
                "last_error": mailbox.last_error or None,
            }
        )

    @extend_schema(request=None, responses={200: JobSerializer, 409: OpenApiResponse(description="Nothing to cancel.")})
    @action(detail=True, methods=["post"], url_path="cancel-sync")
    def cancel_sync(self, request, pk=None):
        job = mailbox_cancel_sync(
            mailbox=self.get_object(), actor=actor_for(request), reason=request.data.get("reason", "")
        )
        return Response(JobSerializer(job, context=self.get_serializer_context()).data)

    @extend_schema(responses=SyncRunSerializer(many=True))
    @action(detail=True, methods=["get"])
    def history(self, request, pk=None):
        """Past syncs, newest first, with their counts."""
        runs = self.get_object().sync_runs.all()[:100]
        return Response(SyncRunSerializer(runs, many=True).data)

    @extend_schema(
        request=None, responses={200: OpenApiResponse(description='{"ok", "error", "error_type", "folders"}')}
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Log in and open each folder; says exactly what failed."""
        mailbox = self.get_object()
        require_permission(request.user, "emailsync.sync_mailbox")
        return Response(mailbox_test_connection(mailbox=mailbox))

    @extend_schema(
        request=RulesTestRequestSerializer,
        responses={
            200: OpenApiResponse(
                description=(
                    '{"ok", "error", "rules", "messages": [{"message", "subject", "sender", "folder", "rule", '
                    '"action", "attachments", "body_as_invoice", "vendor", "invoice_owner", "after_processing", '
                    '"outcome", ...}]}'
                )
            )
        },
    )
    @action(detail=True, methods=["post"], url_path="test-rules")
    def test_rules(self, request, pk=None):
        """Dry run: what the rules would do with the last `limit` recorded messages (nothing is ingested)."""
        mailbox = self.get_object()
        body = RulesTestRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response(
            mailbox_rules_test(mailbox=mailbox, actor=actor_for(request), limit=body.validated_data["limit"])
        )

    @extend_schema(
        responses={
            200: OpenApiResponse(description="Per mailbox and day: messages scanned, invoices found (staff only).")
        }
    )
    @action(detail=False, methods=["get"])
    def statistics(self, request):
        if not request.user.is_staff:
            raise NotAllowed("Staff only.")
        rows = (
            SyncRun.objects.annotate(day=TruncDate("started_at"))
            .values("mailbox__name", "day")
            .annotate(
                messages_new=Sum("messages_new"),
                messages_seen=Sum("messages_seen"),
                invoices_created=Sum("invoices_created"),
                errors=Sum("errors"),
            )
            .order_by("-day", "mailbox__name")[:1000]
        )
        return Response(
            [
                {
                    "mailbox": r["mailbox__name"],
                    "day": r["day"],
                    "messages_scanned": r["messages_new"],
                    "messages_matched": r["messages_seen"],
                    "invoices_found": r["invoices_created"],
                    "errors": r["errors"],
                }
                for r in rows
            ]
        )


def oauth_redirect_uri(request) -> str:
    """The one callback URL to register with Google and Microsoft (OAUTH_REDIRECT_URI, else this host's)."""
    return settings.OAUTH_REDIRECT_URI or request.build_absolute_uri(reverse("mailbox-oauth-callback"))


def _attempt_source(state: str) -> str | None:
    return OAuthAuthorization.objects.filter(state=state).values_list("source", flat=True).first() if state else None


def _last_sync_job(mailbox: Mailbox):
    return Job.objects.filter(kind="emailsync.sync_mailbox", subject_id=str(mailbox.pk)).order_by("-created_at").first()


class MailRulePermissions(DjangoModelPermissions):
    """Reading rules needs view_mailbox; writing them change_mailbox (checked again in the service)."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["emailsync.view_mailbox"],
        "POST": ["emailsync.change_mailbox"],
        "PUT": ["emailsync.change_mailbox"],
        "PATCH": ["emailsync.change_mailbox"],
        "DELETE": ["emailsync.change_mailbox"],
    }


class MailRuleViewSet(viewsets.ModelViewSet):
    """Mail rules of the mailboxes you own (staff: all), in the order they are tried. `?mailbox=<id>` filters."""

    serializer_class = MailRuleSerializer
    permission_classes = [IsAuthenticated, MailRulePermissions]
    queryset = MailRule.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return MailRule.objects.none()
        rules = (
            MailRule.objects.filter(mailbox__in=mailboxes_visible_to(self.request.user))
            .select_related("mailbox", "vendor", "invoice_owner")
            .order_by("mailbox__name", "position", "pk")
        )
        mailbox = self.request.query_params.get("mailbox")
        if mailbox:
            if not mailbox.isdigit():
                raise serializers.ValidationError({"mailbox": ["A mailbox id."]})
            rules = rules.filter(mailbox_id=int(mailbox))
        return rules

    def _save(self, serializer, rule=None):
        data = dict(serializer.validated_data)
        mailbox = data.pop("mailbox", None)
        return mail_rule_save(actor=actor_for(self.request), mailbox=mailbox, rule=rule, **data)

    def perform_create(self, serializer):
        serializer.instance = self._save(serializer)

    def perform_update(self, serializer):
        serializer.instance = self._save(serializer, rule=serializer.instance)

    def perform_destroy(self, instance):
        mail_rule_delete(rule=instance, actor=actor_for(self.request))
