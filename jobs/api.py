"""REST API of the job core: /api/v1/jobs/."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.fields import SkipField
from rest_framework.permissions import IsAuthenticated
from rest_framework.relations import PKOnlyObject
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from core.api import actor_for
from core.errors import NotAllowed
from core.filters import UTCIsoDateTimeFilter
from core.models import TriggerSource
from core.pagination import CheckedCursorPagination
from jobs.errors import JobAlreadyActive, JobParamsInvalid
from jobs.kinds import kinds_for_user, params_json_schema
from jobs.models import ACTIVE_STATUSES, Job, JobStatus
from jobs.selectors import job_actual_duration, job_estimated_duration, job_time_left, jobs_visible_to
from jobs.services import job_cancel, job_cancel_all, job_retry, job_start_time, job_terminate, job_trigger


class JobSerializer(serializers.ModelSerializer):
    """A job as the API shows it. `traceback` only for staff (null for others)."""

    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    subject = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    message = serializers.CharField(source="progress_message", read_only=True)
    estimated_duration = serializers.SerializerMethodField(help_text="Expected run time in seconds.")
    estimated_time_left = serializers.SerializerMethodField(help_text="Seconds until expected completion.")
    actual_duration = serializers.SerializerMethodField(help_text="Seconds run so far, or in total.")
    wait_time = serializers.SerializerMethodField(help_text="Seconds between enqueue and start.")
    cancel_requested = serializers.SerializerMethodField()
    traceback = serializers.CharField(read_only=True, allow_null=True, help_text="Staff only: null for others.")

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "status",
            "queue",
            "priority",
            "params",
            "source",
            "owner",
            "subject",
            "unique_key",
            "progress",
            "message",
            "estimated_duration",
            "estimated_time_left",
            "actual_duration",
            "wait_time",
            "attempts",
            "max_attempts",
            "lost_runs",
            "result",
            "error",
            "traceback",
            "is_dead_letter",
            "cancel_requested",
            "retry_of",
            "created_at",
            "not_before",
            "started_at",
            "finished_at",
            "next_attempt_at",
            "worker",
        ]
        read_only_fields = fields

    def get_subject(self, job: Job) -> dict | None:
        if not job.subject_type:
            return None
        return {"type": job.subject_type, "id": job.subject_id, "label": job.subject_label}

    def get_progress(self, job: Job) -> dict:
        return {"done": job.progress_done, "total": job.progress_total, "percent": job.progress_percent}

    def get_estimated_duration(self, job: Job) -> float | None:
        return _round(job_estimated_duration(job))

    def get_estimated_time_left(self, job: Job) -> float | None:
        return _round(job_time_left(job))

    def get_actual_duration(self, job: Job) -> float | None:
        return _round(job_actual_duration(job))

    def get_wait_time(self, job: Job) -> float | None:
        return _round(job.wait_time.total_seconds()) if job.wait_time is not None else None

    def get_cancel_requested(self, job: Job) -> bool:
        return job.cancel_requested_at is not None

    @classmethod
    def _output_plan(cls) -> list[tuple[str, serializers.Field, object]]:
        """(name, field bound to a serializer of this class, its get_ method or None), in order."""
        if "_plan" not in cls.__dict__:
            fields = cls().fields
            cls._plan = [
                (
                    name,
                    field,
                    getattr(cls, field.method_name) if isinstance(field, serializers.SerializerMethodField) else None,
                )
                for name, field in fields.items()
                if not field.write_only
            ]
        return cls._plan

    def to_representation(self, job: Job) -> dict:
        # DRF's loop, over fields bound once per class: DRF binds a copy of all 31
        # fields for every job shown and looks each method up by name (0.17 -> 0.06 ms
        # per job; docs/benchmarks.md). The fields are read-only and hold no state.
        data = {}
        for name, field, method in self._output_plan():
            if method is not None:
                data[name] = method(self, job)
                continue
            try:
                value = field.get_attribute(job)
            except SkipField:
                continue
            is_none = (value.pk if isinstance(value, PKOnlyObject) else value) is None
            data[name] = None if is_none else field.to_representation(value)
        request = self.context.get("request")
        if not (request and request.user.is_staff):
            data["traceback"] = None  # the key stays, as the schema says; its content is for staff
        return data


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


class TriggerSerializer(serializers.Serializer):
    kind = serializers.CharField()
    params = serializers.DictField(required=False, default=dict)
    priority = serializers.IntegerField(min_value=0, max_value=9, required=False)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
    run_at = serializers.DateTimeField(
        required=False, help_text="Start at this time (not in the past; at most JOB_MAX_START_DELAY_DAYS ahead)."
    )
    countdown = serializers.FloatField(required=False, help_text="Start this many seconds from now.")

    def validate(self, data):
        try:
            data["start_at"] = job_start_time(run_at=data.get("run_at"), countdown=data.get("countdown"))
        except JobParamsInvalid as exc:
            raise serializers.ValidationError(exc.errors) from None
        return data


class ActionSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class CancelSerializer(ActionSerializer):
    terminate = serializers.BooleanField(
        required=False, default=False, help_text="Kill the worker process now (staff only)."
    )


class CancelAllSerializer(ActionSerializer):
    kind = serializers.CharField(required=False, allow_blank=True, default="")


class JobKindSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    description = serializers.CharField()
    queue = serializers.CharField()
    priority = serializers.IntegerField()
    max_attempts = serializers.IntegerField()
    params_schema = serializers.DictField()


class JobFilter(django_filters.FilterSet):
    # distinct=False: a DISTINCT over every column sorted all failed jobs (557 ms -> 34 ms at 1M rows)
    status = django_filters.MultipleChoiceFilter(choices=JobStatus.choices, distinct=False)
    kind = django_filters.CharFilter()
    queue = django_filters.CharFilter()
    source = django_filters.ChoiceFilter(choices=TriggerSource.choices)
    dead_letter = django_filters.BooleanFilter(field_name="is_dead_letter")
    active = django_filters.BooleanFilter(method="filter_active")
    created_after = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    subject_type = django_filters.CharFilter(help_text='e.g. "invoices.invoice"')
    subject_id = django_filters.CharFilter()
    mine = django_filters.BooleanFilter(method="filter_mine", help_text="Only jobs you started (staff see everyone's).")

    class Meta:
        model = Job
        fields = []

    def filter_mine(self, queryset, name, value):
        return queryset.filter(owner=self.request.user) if value else queryset

    def filter_active(self, queryset, name, value):
        return queryset.filter(status__in=ACTIVE_STATUSES) if value else queryset.exclude(status__in=ACTIVE_STATUSES)


class NewestFirst(CheckedCursorPagination):
    """Cursor pages: fast at millions of rows (no COUNT, no OFFSET)."""

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def job_started(job: Job, request, context: dict | None = None) -> Response:
    """202 + the job just started. A job already active under the same unique key is
    a JobAlreadyActive conflict (409) carrying that job as the caller may see it."""
    if job.deduplicated:
        raise JobAlreadyActive(current=job_as_seen_by(job, request, context))
    return Response(JobSerializer(job, context=context or {"request": request}).data, status=status.HTTP_202_ACCEPTED)


def job_as_seen_by(job: Job, request, context: dict | None = None) -> dict:
    """The job as this caller may see it: in full if it is one of theirs (staff: any),
    else only that it is active (a 409 must not show someone else's job)."""
    if jobs_visible_to(request.user).filter(pk=job.pk).exists():
        return JobSerializer(job, context=context or {"request": request}).data
    return {
        "detail": "A job for this is already queued or running.",
        "kind": job.kind,
        "status": job.status,
        "progress": {"done": job.progress_done, "total": job.progress_total, "percent": job.progress_percent},
    }


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Jobs: your own (staff: everyone's). Trigger, cancel and retry."""

    serializer_class = JobSerializer
    permission_classes = [IsAuthenticated]
    filterset_class = JobFilter
    pagination_class = NewestFirst
    throttle_scope = "trigger"

    queryset = Job.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Job.objects.none()
        return jobs_visible_to(self.request.user)

    def filter_queryset(self, queryset):
        # The list's filters (status, kind, ...) do not apply to one job, its
        # actions or its retry: building the filter form there costs a third of the request.
        if self.action != "list":
            return queryset
        return super().filter_queryset(queryset)

    def get_throttles(self):
        if self.action in ("create", "cancel", "retry", "cancel_all"):
            return [*super().get_throttles(), ScopedRateThrottle()]
        return super().get_throttles()

    @extend_schema(
        request=TriggerSerializer,
        responses={
            202: JobSerializer,
            409: OpenApiResponse(JobSerializer, description="An active job with the same unique key."),
            400: OpenApiResponse(description="Unknown kind or invalid parameters (field errors under `params`)."),
            404: OpenApiResponse(description="The object the job would be about does not exist or is not yours."),
        },
    )
    def create(self, request):
        """Trigger a job of a registered kind."""
        body = TriggerSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = job_trigger(
            kind=body.validated_data["kind"],
            params=body.validated_data["params"],
            actor=actor_for(request),
            priority=body.validated_data.get("priority"),
            reason=body.validated_data["reason"],
            run_at=body.validated_data["start_at"],
        )
        return job_started(job, request, self.get_serializer_context())

    @extend_schema(responses=JobKindSerializer(many=True))
    @action(detail=False, methods=["get"])
    def kinds(self, request):
        """The job kinds you may trigger, with their parameter schemas."""
        data = [
            {
                "name": kind.name,
                "label": kind.label or kind.name,
                "description": kind.description,
                "queue": kind.queue,
                "priority": kind.priority,
                "max_attempts": kind.max_attempts,
                "params_schema": params_json_schema(kind),
            }
            for kind in kinds_for_user(request.user)
        ]
        return Response(data)

    @extend_schema(
        request=CancelSerializer,
        responses={200: JobSerializer, 409: OpenApiResponse(description="The job already finished.")},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel a queued or running job; `terminate: true` kills it now (staff)."""
        job = self.get_object()
        body = CancelSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        operation = job_terminate if body.validated_data["terminate"] else job_cancel
        job = operation(job=job, actor=actor_for(request), reason=body.validated_data["reason"])
        return Response(JobSerializer(job, context=self.get_serializer_context()).data)

    @extend_schema(
        request=ActionSerializer,
        responses={
            202: JobSerializer,
            409: OpenApiResponse(
                description="The job is not failed or cancelled, or an active job holds its unique key."
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Run a failed or cancelled job again, as a new job."""
        job = self.get_object()
        body = ActionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        new_job = job_retry(job=job, actor=actor_for(request), reason=body.validated_data["reason"])
        return job_started(new_job, request, self.get_serializer_context())

    @extend_schema(request=CancelAllSerializer, responses={200: OpenApiResponse(description='{"cancelled": N}')})
    @action(detail=False, methods=["post"], url_path="cancel-all")
    def cancel_all(self, request):
        """Cancel every active job, or every active job of one kind (staff only)."""
        body = CancelAllSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if not request.user.is_staff:
            raise NotAllowed("Only staff may cancel all jobs.")
        count = job_cancel_all(
            actor=actor_for(request), kind=body.validated_data["kind"] or None, reason=body.validated_data["reason"]
        )
        return Response({"cancelled": count})
