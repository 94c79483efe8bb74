"""REST API of monitoring: /api/v1/monitoring/...

health and status: any authenticated user; scan: the monitoring.run_scan
permission; everything else: staff.
"""

from __future__ import annotations

import django_filters
from django.shortcuts import get_object_or_404
from django_celery_beat.models import PeriodicTask
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAdminUser, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from core.api import actor_for
from core.errors import Conflict
from jobs.api import JobSerializer, NewestFirst, job_started
from jobs.services import schedule_run_now
from monitoring.health import health_report
from monitoring.metrics import kind_metrics, recent_failures
from monitoring.models import Alert, AlertStatus, ScanRun, Violation, ViolationStatus
from monitoring.periodic import schedule_report, schedules_overview
from monitoring.queues import queue_overview
from monitoring.selectors import monitoring_status
from monitoring.services import scan_trigger
from monitoring.workers import workers_overview

HealthSerializer = inline_serializer(
    "Health",
    {
        "healthy": serializers.BooleanField(),
        "checked_at": serializers.DateTimeField(),
        "duration_ms": serializers.FloatField(),
        "checks": inline_serializer(
            "HealthCheck",
            {
                "name": serializers.CharField(),
                "ok": serializers.BooleanField(),
                "error": serializers.CharField(allow_null=True),
                "duration_ms": serializers.FloatField(),
            },
            many=True,
        ),
    },
)


class StatusSerializer(serializers.Serializer):
    is_monitoring_active = serializers.BooleanField()
    last_scan_time = serializers.DateTimeField(allow_null=True)
    last_scan_status = serializers.ChoiceField(choices=ScanRun.Status.choices, allow_null=True)
    violations_found_last_scan = serializers.IntegerField(allow_null=True)
    records_scanned_last_scan = serializers.IntegerField(allow_null=True)
    total_scans_today = serializers.IntegerField()
    next_scheduled_scan = serializers.DateTimeField(allow_null=True)


class HealthView(APIView):
    """All health checks: 200 when every one passes, else 503; one entry per check."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: HealthSerializer, 503: HealthSerializer})
    def get(self, request):
        report = health_report()
        return Response(report.as_dict(), status=200 if report.healthy else 503)


class StatusView(APIView):
    """Compliance monitoring status."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=StatusSerializer)
    def get(self, request):
        return Response(monitoring_status())


class ScanRequestSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=ScanRun.Mode.choices, default=ScanRun.Mode.FULL)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class ScanView(APIView):
    """Start a compliance scan (needs monitoring.run_scan): 202 + the job, or 409 + the running one."""

    permission_classes = [IsAuthenticated]
    throttle_scope = "trigger"

    def get_throttles(self):
        return [*super().get_throttles(), ScopedRateThrottle()]

    @extend_schema(
        request=ScanRequestSerializer,
        responses={
            202: JobSerializer,
            409: OpenApiResponse(JobSerializer, description="A scan is already queued or running."),
            403: OpenApiResponse(description="No monitoring.run_scan permission."),
        },
    )
    def post(self, request):
        body = ScanRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = scan_trigger(
            actor=actor_for(request), mode=body.validated_data["mode"], reason=body.validated_data["reason"]
        )
        return job_started(job, request)


class QueuesView(APIView):
    """Per queue: messages in the broker (total and per priority step) and the oldest waiting job's age."""

    permission_classes = [IsAdminUser]

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="Queues by name.")})
    def get(self, request):
        return Response(queue_overview())


class WorkersView(APIView):
    """Per worker: hostname, pid, concurrency, queues, active jobs, processed count, last heartbeat.
    Cached for MONITORING_WORKER_CACHE_SECONDS; `?fresh=1` asks the workers now."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        parameters=[OpenApiParameter("fresh", OpenApiTypes.BOOL, description="Ask the workers now.")],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="Workers and when asked.")},
    )
    def get(self, request):
        return Response(workers_overview(fresh=request.query_params.get("fresh") == "1"))


class MetricsView(APIView):
    """Per job kind: throughput, failure rate, run and wait time percentiles, slow jobs, recent failures."""

    permission_classes = [IsAdminUser]

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="Metrics per job kind.")})
    def get(self, request):
        return Response({**kind_metrics(), "recent_failures": recent_failures()})


class ScheduleViewSet(viewsets.ViewSet):
    """Periodic tasks: last run, next run, expected against actual runs; run one now."""

    permission_classes = [IsAdminUser]
    lookup_value_regex = r"\d+"

    @extend_schema(
        operation_id="v1_monitoring_schedules_list",
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="Every periodic task.")},
    )
    def list(self, request):
        return Response(schedules_overview())

    @extend_schema(
        parameters=[OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="One periodic task.")},
    )
    def retrieve(self, request, pk=None):
        return Response(schedule_report(get_object_or_404(PeriodicTask, pk=pk)))

    @extend_schema(
        request=None,
        parameters=[OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        responses={202: OpenApiResponse(description="The job or task sent.")},
    )
    @action(detail=True, methods=["post"])
    def run(self, request, pk=None):
        """Send this periodic task now (audited)."""
        task = get_object_or_404(PeriodicTask, pk=pk)
        outcome = schedule_run_now(task=task, actor=actor_for(request), reason=request.data.get("reason", ""))
        if outcome["deduplicated"]:
            raise Conflict(f"Job {outcome['job_id']} of {task.task} is already active.", current=outcome)
        return Response(outcome, status=status.HTTP_202_ACCEPTED)


class AlertSerializer(serializers.ModelSerializer):
    rule = serializers.CharField(source="rule.name")
    rule_kind = serializers.CharField(source="rule.kind")
    severity = serializers.CharField(source="rule.severity")

    class Meta:
        model = Alert
        fields = [
            "id",
            "rule",
            "rule_kind",
            "severity",
            "key",
            "status",
            "message",
            "value",
            "fired_at",
            "last_seen_at",
            "resolved_at",
        ]


class AlertFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=AlertStatus.choices)

    class Meta:
        model = Alert
        fields = ["status"]


class ByFiredAt(NewestFirst):
    ordering = ("-fired_at", "-id")


class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Alerts, newest first; `?status=firing` for the open ones."""

    permission_classes = [IsAdminUser]
    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    pagination_class = ByFiredAt
    queryset = Alert.objects.select_related("rule")


class ScanRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = ScanRun
        fields = [
            "id",
            "job_id",
            "mode",
            "status",
            "started_at",
            "finished_at",
            "records_scanned",
            "violations_found",
            "violations_opened",
            "violations_resolved",
            "duration_seconds",
            "error",
        ]


class ByStartedAt(NewestFirst):
    ordering = ("-started_at", "-id")


class ScanRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Compliance scans, newest first."""

    permission_classes = [IsAdminUser]
    serializer_class = ScanRunSerializer
    pagination_class = ByStartedAt
    queryset = ScanRun.objects.all()


class ViolationSerializer(serializers.ModelSerializer):
    rule = serializers.CharField(source="rule.name")
    rule_kind = serializers.CharField(source="rule.kind")
    severity = serializers.CharField(source="rule.severity")
    invoice = serializers.SerializerMethodField()

    class Meta:
        model = Violation
        fields = [
            "id",
            "rule",
            "rule_kind",
            "severity",
            "invoice",
            "status",
            "first_seen_at",
            "last_seen_at",
            "resolved_at",
        ]

    def get_invoice(self, violation: Violation) -> dict:
        invoice = violation.invoice
        return {
            "id": invoice.pk,
            "invoice_number": invoice.invoice_number,
            "seller_name": invoice.seller_name,
            "total_gross": str(invoice.total_gross) if invoice.total_gross is not None else None,
            "currency": invoice.currency,
        }


class ViolationFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ViolationStatus.choices)
    rule = django_filters.CharFilter(field_name="rule__kind")
    invoice = django_filters.NumberFilter(field_name="invoice_id")

    class Meta:
        model = Violation
        fields = ["status", "rule", "invoice"]


class ByLastSeen(NewestFirst):
    ordering = ("-last_seen_at", "-id")


class ViolationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Policy violations; `?status=open`, `?rule=<kind>`, `?invoice=<id>`."""

    permission_classes = [IsAdminUser]
    serializer_class = ViolationSerializer
    filterset_class = ViolationFilter
    pagination_class = ByLastSeen
    queryset = Violation.objects.select_related("rule", "invoice")
