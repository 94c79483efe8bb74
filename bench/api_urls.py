"""The app's URLs plus `GET /bench/trivial/`: a DRF view with the project's default
authentication, permission and throttles that does nothing else, the floor a
request pays on this machine (bench/api_latency.py only, through bench/api_settings.py)."""

from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as app_urlpatterns


class TrivialView(APIView):
    """Authenticated, permission-checked and throttled like every API view; answers a constant."""

    def get(self, request):
        return Response({"ok": True})


urlpatterns = [path("bench/trivial/", TrivialView.as_view()), *app_urlpatterns]
