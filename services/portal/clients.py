"""The five services' HTTP APIs, called with the signed-in user's bearer token."""

from __future__ import annotations

from typing import Any

import httpx

# Refusals that mean "an event has not arrived yet", not "this is wrong": the step works
# once the other service has read the event from the log (usually within a second).
NOT_ARRIVED_YET = frozenset({"BudgetNotKnown"})


class ServiceError(Exception):
    """A service refused a call or could not be reached; `message` is for the user."""

    def __init__(
        self, service: str, status: int, detail: str, error: str | None, body: Any = None
    ) -> None:
        super().__init__(f"{service} answered {status}: {detail}")
        self.service = service
        self.status = status
        self.detail = detail
        self.error = error
        self.body = body

    @property
    def not_arrived_yet(self) -> bool:
        return self.error in NOT_ARRIVED_YET

    @property
    def message(self) -> str:
        if self.status == 0:
            return f"The {self.service} service is not answering. Try again in a moment."
        if self.not_arrived_yet:
            return (
                "Not ready yet: the earlier step is still reaching this part of the system. "
                f"Try again in a moment. ({self.detail})"
            )
        if self.status == 403:
            return f"You may not do this: {self.detail}"
        if self.status == 404:
            return "Not found: there is no such record, or it belongs to another council."
        if self.status == 409:
            return f"This cannot be done now: {self.detail}"
        if self.status == 401:
            return "Your sign-in has ended. Please sign in again."
        return f"Please check what you entered: {self.detail}"


class ImportReport:
    """What a service said about an uploaded file: accepted, or every refused row."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    @property
    def accepted(self) -> bool:
        return bool(self.body.get("accepted"))

    @property
    def lines(self) -> int:
        return int(self.body.get("lines", 0))

    @property
    def rejected(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.body.get("rejected", [])
        return rows

    def count(self, name: str) -> int:
        value = self.body.get(name, 0)
        return len(value) if isinstance(value, list) else int(value)


def _detail(body: Any) -> tuple[str, str | None]:
    """The reason and the rule of a service's problem document (docs/api.md)."""
    if not isinstance(body, dict):
        return str(body)[:500], None
    detail = body.get("detail")
    error = body.get("error")
    fields = body.get("errors")
    if isinstance(fields, list) and fields:  # bad input: each field and what it expects
        parts = []
        for item in fields:
            if isinstance(item, dict):
                where = str(item.get("field", "")).partition(".")[2]
                message = str(item.get("message", ""))
                parts.append(f"{where}: {message}" if where else message)
        return "; ".join(parts) or "the request was not accepted", _text(error)
    return str(detail), _text(error)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class Services:
    """One shared HTTP client; every call names the service and carries the user's token."""

    def __init__(self, urls: dict[str, str], timeout: float) -> None:
        self.urls = urls
        self._client = httpx.AsyncClient(timeout=timeout)

    async def close(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        service: str,
        method: str,
        path: str,
        token: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        csv: bytes | None = None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        if csv is not None:
            headers["Content-Type"] = "text/csv; charset=utf-8"
        try:
            response = await self._client.request(
                method,
                f"{self.urls[service]}{path}",
                json=json,
                content=csv,
                params={k: v for k, v in (params or {}).items() if v not in (None, "")},
                headers=headers,
            )
        except httpx.HTTPError as err:
            raise ServiceError(service, 0, str(err), None) from err
        if response.status_code >= 400:
            try:
                body: Any = response.json()
            except ValueError:
                body = response.text
            detail, error = _detail(body)
            raise ServiceError(service, response.status_code, detail, error, body)
        return response

    async def upload_csv(self, service: str, path: str, token: str, content: bytes) -> ImportReport:
        """Send a file as the body (text/csv). A file refused row by row is a report too."""
        try:
            response = await self.request(service, "POST", path, token, csv=content)
        except ServiceError as err:
            if err.status == 422 and isinstance(err.body, dict) and "rejected" in err.body:
                return ImportReport(err.body)
            raise
        return ImportReport(response.json())

    async def openapi_paths(self, service: str) -> set[tuple[str, str]]:
        """(method, path) of every operation the service's OpenAPI document lists."""
        response = await self._client.get(f"{self.urls[service]}/openapi.json")
        if response.status_code != 200:
            return set()
        document: dict[str, Any] = response.json()
        return {
            (method.lower(), path)
            for path, operations in document.get("paths", {}).items()
            for method in operations
        }

    async def get(
        self, service: str, path: str, token: str, params: dict[str, Any] | None = None
    ) -> Any:
        return (await self.request(service, "GET", path, token, params=params)).json()

    async def post(self, service: str, path: str, token: str, body: Any = None) -> Any:
        return (await self.request(service, "POST", path, token, json=body or {})).json()

    async def put(self, service: str, path: str, token: str, body: Any) -> Any:
        return (await self.request(service, "PUT", path, token, json=body)).json()
