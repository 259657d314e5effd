"""Token sign-in and revocation (DRF's authtoken: one token per user)."""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_serializer, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .throttling import ScopedRateThrottle
from .typealias import AuthenticatedRequest


class TokenCreateApi(APIView):
    """Exchange a username and password for an API token (``Authorization: Token <key>``)."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema_serializer(component_name="TokenCreateInput")
    class InputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=4096, trim_whitespace=False)

    def get_authenticate_header(self, request: Request) -> str:
        # No authentication runs here, but a wrong password is still a 401 (not DRF's 403).
        return "Token"

    @extend_schema(
        request=InputSerializer,
        responses={200: inline_serializer("Token", {"token": serializers.CharField()})},
        examples=[OpenApiExample("sign in", value={"username": "demo", "password": "…"}, request_only=True)],
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            username=data.validated_data["username"],
            password=data.validated_data["password"],
        )
        if user is None or not user.is_active:
            raise exceptions.AuthenticationFailed("Wrong username or password.")
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})


class TokenRevokeApi(APIView):
    """Delete the caller's token: every client using it is signed out."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None})
    def post(self, request: AuthenticatedRequest) -> Response:
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
