"""The OpenAPI schema describes exactly what the invoice and export endpoints return:
real responses of every JSON endpoint are validated against the schema served at
/api/schema/, with no key the schema does not list (additionalProperties: false)."""

from __future__ import annotations

import io
import re

import jsonschema
import pytest

from invoices.models import Vendor
from tests.invoices.review_support import PEPPOL, RIGHT_GROSS, VALID_IBAN, needs_review_invoice

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def to_json_schema(node, components: dict, seen: tuple = ()):
    """An OpenAPI 3 schema as a strict JSON Schema: $refs inlined, `nullable` as a null type,
    and objects with declared properties closed to other keys."""
    if isinstance(node, list):
        return [to_json_schema(item, components, seen) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        assert name not in seen, f"recursive schema {name}"
        return to_json_schema(components[name], components, (*seen, name))
    out = {
        key: to_json_schema(value, components, seen)
        for key, value in node.items()
        if key not in ("nullable", "readOnly", "writeOnly", "format", "example", "description", "properties")
    }
    if "properties" in node:  # a map of names to schemas: the names are kept whatever they are
        out["properties"] = {
            name: to_json_schema(value, components, seen) for name, value in node["properties"].items()
        }
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        if "allOf" in out or "oneOf" in out:
            out = {"anyOf": [out, {"type": "null"}]}
    if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


class SchemaChecker:
    def __init__(self, client):
        self.schema = client.get("/api/schema/", {"format": "json"}).json()
        self.components = self.schema["components"]["schemas"]
        self.checked: set[tuple[str, str, int]] = set()

    def operation(self, method: str, url: str) -> tuple[str, dict]:
        path = url.split("?", 1)[0]
        # Literal paths first: /invoices/review-queue/ is not /invoices/{id}/.
        for template, item in sorted(self.schema["paths"].items(), key=lambda pair: pair[0].count("{")):
            pattern = (
                "^"
                + "".join(
                    "[^/]+" if part.startswith("{") else re.escape(part) for part in re.split(r"(\{[^}]+\})", template)
                )
                + "$"
            )
            if re.match(pattern, path) and method in item:
                return template, item[method]
        raise AssertionError(f"{method.upper()} {path} is not in the schema")

    def check(self, response, method: str, url: str) -> None:
        template, operation = self.operation(method, url)
        code = str(response.status_code)
        assert code in operation["responses"], f"{method.upper()} {template} answered {code}, not in the schema"
        content = operation["responses"][code].get("content", {}).get("application/json")
        assert content is not None and "schema" in content, f"{method.upper()} {template} {code} has no JSON schema"
        jsonschema.validate(response.json(), to_json_schema(content["schema"], self.components))
        self.checked.add((method, template, response.status_code))


@pytest.fixture
def clerk(make_user):
    return make_user("clerk", role="ap_clerk")


def test_every_invoice_endpoint_answers_what_the_schema_says(clerk, make_user, client_for):
    client = client_for(clerk)
    checker = SchemaChecker(client)

    def call(method: str, url: str, data=None, **kwargs):
        response = getattr(client, method)(url, data, **kwargs)
        checker.check(response, method, url)
        return response

    invoice = needs_review_invoice(owner=clerk)
    Vendor.objects.create(name="Somebody Else", vat_id="DE136695976")
    handle = io.BytesIO(PEPPOL.read_bytes())
    handle.name = "base-example.xml"
    assert call("post", "/api/v1/invoices/", {"files": [handle]}, format="multipart").status_code == 202
    assert call("get", "/api/v1/invoices/").status_code == 200
    assert call("get", f"/api/v1/invoices/{invoice.pk}/").status_code == 200
    patched = call(
        "patch",
        f"/api/v1/invoices/{invoice.pk}/",
        {"total_gross": RIGHT_GROSS, "changes": {"lines[1].quantity": "2"}, "reason": "paper copy", "revalidate": True},
        format="json",
    )
    assert patched.status_code == 200 and patched.json()["corrected_fields"] == ["lines[1].quantity", "total_gross"]
    assert call("get", f"/api/v1/invoices/{invoice.pk}/corrections/").status_code == 200
    assert call("get", "/api/v1/invoices/review-queue/?unassigned=true").status_code == 200
    assert call("post", f"/api/v1/invoices/{invoice.pk}/assign/", {}, format="json").status_code == 200
    refused = call("post", f"/api/v1/invoices/{invoice.pk}/vendor/", {"create_from_seller": True}, format="json")
    assert refused.status_code == 400 and {"seller_vat_id", "payment_iban"} <= set(refused.json())
    seller = {"seller_vat_id": "DE112345670", "payment_iban": VALID_IBAN}  # DE136695976 is Somebody Else's
    assert call("patch", f"/api/v1/invoices/{invoice.pk}/", seller, format="json").status_code == 200
    assert (
        call("post", f"/api/v1/invoices/{invoice.pk}/vendor/", {"create_from_seller": True}, format="json").status_code
        == 200
    )
    assert call("post", f"/api/v1/invoices/{invoice.pk}/approve/", {}, format="json").status_code == 200
    assert call("post", f"/api/v1/invoices/{invoice.pk}/reprocess/", {"force": True}, format="json").status_code == 202
    other = needs_review_invoice("2", owner=clerk)
    assert (
        call("post", f"/api/v1/invoices/{other.pk}/reject/", {"reason": "not ours"}, format="json").status_code == 200
    )
    created = call("post", "/api/v1/exports/", {"format": "csv", "invoice_ids": [other.pk, invoice.pk]}, format="json")
    assert created.status_code in (202, 400)
    third = needs_review_invoice("3", owner=clerk)
    client.post(f"/api/v1/invoices/{third.pk}/approve/", {}, format="json")
    created = call("post", "/api/v1/exports/", {"format": "json", "invoice_ids": [third.pk]}, format="json")
    assert created.status_code == 202
    export_id = created.json()["export"]["id"]
    assert call("get", f"/api/v1/exports/{export_id}/").status_code == 200
    assert call("get", "/api/v1/exports/").status_code == 200
    assert len(checker.checked) >= 14


def test_the_old_detail_keys_are_all_in_the_schema(client_for, clerk):
    """The detail used to return ~14 keys the schema did not list."""
    client = client_for(clerk)
    schema = client.get("/api/schema/", {"format": "json"}).json()
    declared = set(schema["components"]["schemas"]["InvoiceDetail"]["properties"])
    invoice = needs_review_invoice(owner=clerk)
    returned = set(client.get(f"/api/v1/invoices/{invoice.pk}/").json())
    assert returned == declared
