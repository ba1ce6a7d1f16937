"""The generated Python client (openapi-python-client) against a live Custodia server.

    CUSTODIA_ADDR=http://127.0.0.1:8200 CUSTODIA_TOKEN=cst_... PYTHONPATH=OUT/python pytest clients/python

OUT is clients/generate.sh's output directory; CUSTODIA_TOKEN an admin key (it creates a
principal). clients/run-tests.sh does all of this against a throwaway server.

Only the generated typed functions and models are used. Documented error answers come back as
a typed `ErrorBody` in `Response.parsed` (the generator returns them, it does not raise: its
`raise_on_unexpected_status` raises only for statuses the document does not list).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import httpx
import pytest
from custodia_client import AuthenticatedClient
from custodia_client.api.consent import privacy_state, record_consent
from custodia_client.api.principals import create_principal, revoke_principal, rotate_principal_key
from custodia_client.api.records import create_record, list_records
from custodia_client.api.requests import create_request, fulfil_request
from custodia_client.api.transparency import notice_versions
from custodia_client.models import (
    ConsentRequest,
    ConsentRequestMethod,
    ConsentRequestPurpose,
    CreatePrincipalRequest,
    CreatePrincipalResponse,
    CreateRecordCollection,
    CreateRecordRequest,
    CreateRecordRequestFields,
    CreateRecordRequestPurpose,
    CreateRecordResponse,
    ErrorBody,
    EvidenceInput,
    LedgerAppended,
    ListRecordsCollection,
    ListRecordsPurpose,
    NewSubjectRequest,
    NewSubjectRequestJurisdiction,
    NewSubjectRequestType,
    NoticeVersions,
    PrivacyState,
    RecordList,
    SubjectPackage,
)
from custodia_client.types import UNSET, Response

if not os.environ.get("CUSTODIA_ADDR") or not os.environ.get("CUSTODIA_TOKEN"):
    raise RuntimeError("set CUSTODIA_ADDR and CUSTODIA_TOKEN (an admin key); see clients/README.md")
ADDR = os.environ["CUSTODIA_ADDR"]
TOKEN = os.environ["CUSTODIA_TOKEN"]

ADA = {
    "email": "ada@example.com",
    "name": "Ada Lovelace",
    "phone": "+44 20 7946 0958",
    "shipping_address": "12 St James Square\nLondon",
}
# What reads give back: phone numbers are stored normalised to E.164.
ADA_STORED = {**ADA, "phone": "+442079460958"}


def unique(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


def connect(key: str) -> AuthenticatedClient:
    # raise_on_unexpected_status: a status the document does not list fails the test loudly.
    return AuthenticatedClient(base_url=ADDR, token=key, raise_on_unexpected_status=True, timeout=httpx.Timeout(30))


@pytest.fixture(scope="module")
def admin() -> Iterator[AuthenticatedClient]:
    with connect(TOKEN) as client:
        yield client


def expect_error(response: Response[Any], status: HTTPStatus, code: str) -> ErrorBody:
    """A documented error answer, parsed into the generated ErrorBody model."""
    assert response.status_code == status, response.content
    body = response.parsed
    assert isinstance(body, ErrorBody), body
    assert body.error.code == code, body.error.message
    assert isinstance(body.error.message, str) and body.error.message
    return body


def read(client: AuthenticatedClient, subject: str, purpose: ListRecordsPurpose) -> Response[ErrorBody | RecordList]:
    return list_records.sync_detailed(subject, ListRecordsCollection.CUSTOMERS, client=client, purpose=purpose)


def create_ada(client: AuthenticatedClient, subject: str) -> Response[CreateRecordResponse | ErrorBody]:
    return create_record.sync_detailed(
        subject,
        CreateRecordCollection.CUSTOMERS,
        client=client,
        body=CreateRecordRequest(
            purpose=CreateRecordRequestPurpose.ORDER_FULFILLMENT,
            fields=CreateRecordRequestFields.from_dict(ADA),
        ),
    )


def test_create_and_read_back_under_a_purpose(admin: AuthenticatedClient) -> None:
    subject = unique("cust")
    created = create_ada(admin, subject)
    assert created.status_code == HTTPStatus.CREATED, created.content
    assert isinstance(created.parsed, CreateRecordResponse)
    record_id = created.parsed.record_id
    assert record_id.startswith("rec_")

    got = read(admin, subject, ListRecordsPurpose.ORDER_FULFILLMENT)
    assert got.status_code == HTTPStatus.OK, got.content
    assert isinstance(got.parsed, RecordList)
    [record] = got.parsed.records
    assert record.record_id == record_id
    assert record.fields.to_dict() == ADA_STORED
    assert record.created_at and record.updated_at

    # Another purpose sees only the fields it declares (tax_records: name, shipping_address).
    tax = read(admin, subject, ListRecordsPurpose.TAX_RECORDS)
    assert tax.status_code == HTTPStatus.OK, tax.content
    assert isinstance(tax.parsed, RecordList)
    [record] = tax.parsed.records
    assert record.fields.to_dict() == {k: ADA[k] for k in ("name", "shipping_address")}

    # A field the purpose does not declare is refused, by name.
    refused = create_record.sync_detailed(
        subject,
        CreateRecordCollection.CUSTOMERS,
        client=admin,
        body=CreateRecordRequest(
            purpose=CreateRecordRequestPurpose.ORDER_FULFILLMENT,
            fields=CreateRecordRequestFields.from_dict({"birth_date": "1815-12-10"}),
        ),
    )
    body = expect_error(refused, HTTPStatus.FORBIDDEN, "field_not_in_purpose")
    assert body.error.field == "birth_date"


def test_consent_is_recorded_read_back_and_enforced(admin: AuthenticatedClient) -> None:
    subject = unique("cust")
    marketing = ListRecordsPurpose.MARKETING_EMAIL

    # marketing_email is based on consent: nothing without it.
    expect_error(read(admin, subject, marketing), HTTPStatus.FORBIDDEN, "consent_required")

    versions = notice_versions.sync_detailed(client=admin)
    assert isinstance(versions.parsed, NoticeVersions), versions.content
    notice = versions.parsed.versions[-1].version
    assert notice.startswith("sha256-")

    given = record_consent.sync_detailed(
        subject,
        client=admin,
        body=ConsentRequest(
            purpose=ConsentRequestPurpose.MARKETING_EMAIL,
            granted=True,
            method=ConsentRequestMethod.WEB_FORM,
            notice_version=notice,
            evidence=EvidenceInput(ip="203.0.113.7", user_agent="pytest"),
        ),
    )
    assert given.status_code == HTTPStatus.CREATED, given.content
    assert isinstance(given.parsed, LedgerAppended)
    first_seq = given.parsed.seq

    state = privacy_state.sync_detailed(subject, client=admin)
    assert isinstance(state.parsed, PrivacyState), state.content
    assert state.parsed.subject_id == subject
    [consent] = state.parsed.consents
    assert (consent.purpose, consent.granted, consent.method) == ("marketing_email", True, "web_form")
    assert consent.notice_version == notice
    [entry] = state.parsed.history
    assert (entry.seq, entry.kind, entry.purpose, entry.value) == (first_seq, "consent", "marketing_email", True)
    assert state.parsed.objections == [] and state.parsed.sale_opt_out is False and state.parsed.restricted is False

    # With consent, a write and a read under the purpose go through.
    created = create_record.sync_detailed(
        subject,
        CreateRecordCollection.CUSTOMERS,
        client=admin,
        body=CreateRecordRequest(
            purpose=CreateRecordRequestPurpose.MARKETING_EMAIL,
            fields=CreateRecordRequestFields.from_dict({"email": ADA["email"]}),
        ),
    )
    assert created.status_code == HTTPStatus.CREATED, created.content
    got = read(admin, subject, marketing)
    assert isinstance(got.parsed, RecordList), got.content
    assert [r.fields.to_dict() for r in got.parsed.records] == [{"email": ADA["email"]}]

    # Withdrawal is one call; the history keeps both entries, and reads stop.
    withdrawn = record_consent.sync_detailed(
        subject,
        client=admin,
        body=ConsentRequest(purpose=ConsentRequestPurpose.MARKETING_EMAIL, granted=False, method=ConsentRequestMethod.EMAIL),
    )
    assert isinstance(withdrawn.parsed, LedgerAppended), withdrawn.content
    assert withdrawn.parsed.seq > first_seq
    state = privacy_state.sync_detailed(subject, client=admin)
    assert isinstance(state.parsed, PrivacyState)
    [consent] = state.parsed.consents
    assert (consent.purpose, consent.granted, consent.method) == ("marketing_email", False, "email")
    assert [(e.kind, e.value) for e in state.parsed.history] == [("consent", True), ("consent", False)]
    expect_error(read(admin, subject, marketing), HTTPStatus.FORBIDDEN, "consent_required")


def test_a_weaker_role_gets_a_typed_403(admin: AuthenticatedClient) -> None:
    subject = unique("cust")
    created = create_ada(admin, subject)
    assert created.status_code == HTTPStatus.CREATED, created.content

    issued = create_principal.sync_detailed(
        client=admin,
        body=CreatePrincipalRequest(name=unique("clients-test"), roles=["support_agent"]),
    )
    assert issued.status_code == HTTPStatus.CREATED, issued.content
    assert isinstance(issued.parsed, CreatePrincipalResponse)
    principal = issued.parsed

    with connect(principal.api_key) as support:
        # Its own purpose works (so the 403 below is about the purpose, not the key)...
        ok = read(support, subject, ListRecordsPurpose.CUSTOMER_SUPPORT)
        assert isinstance(ok.parsed, RecordList), ok.content
        [record] = ok.parsed.records
        assert record.fields["email"] == ADA["email"]

        # ...a purpose its role lacks is a 403 with the one error shape.
        denied = read(support, subject, ListRecordsPurpose.ORDER_FULFILLMENT)
        body = expect_error(denied, HTTPStatus.FORBIDDEN, "purpose_not_allowed")
        assert body.error.field in (None, UNSET)
        assert "order_fulfillment" in body.error.message

        # So is a capability it lacks.
        expect_error(
            record_consent.sync_detailed(
                subject,
                client=support,
                body=ConsentRequest(purpose=ConsentRequestPurpose.MARKETING_EMAIL, granted=False, method=ConsentRequestMethod.API),
            ),
            HTTPStatus.FORBIDDEN,
            "not_allowed",
        )

        revoked = revoke_principal.sync_detailed(principal.principal_id, client=admin)
        assert revoked.status_code < 300, revoked.content
        expect_error(
            read(support, subject, ListRecordsPurpose.CUSTOMER_SUPPORT), HTTPStatus.UNAUTHORIZED, "unauthenticated"
        )


def test_calls_whose_body_is_optional_work_without_one(admin: AuthenticatedClient) -> None:
    """The document's optional bodies (a key's rotation, a request's fulfilment) left out."""
    issued = create_principal.sync_detailed(
        client=admin,
        body=CreatePrincipalRequest(name=unique("rotated"), roles=["support_agent"]),
    )
    assert isinstance(issued.parsed, CreatePrincipalResponse), issued.content
    rotated = rotate_principal_key.sync_detailed(issued.parsed.principal_id, client=admin)
    assert isinstance(rotated.parsed, CreatePrincipalResponse), rotated.content
    assert rotated.parsed.api_key != issued.parsed.api_key

    subject = unique("cust")
    created = create_ada(admin, subject)
    assert created.status_code == HTTPStatus.CREATED, created.content
    request = create_request.sync_detailed(
        client=admin,
        body=NewSubjectRequest(
            subject_id=subject,
            type_=NewSubjectRequestType.ACCESS,
            jurisdiction=NewSubjectRequestJurisdiction.GDPR,
            verified_by="signed-in account",
        ),
    )
    assert request.status_code == HTTPStatus.CREATED, request.content
    package = fulfil_request.sync_detailed(request.parsed.request_id, client=admin)
    assert isinstance(package.parsed, SubjectPackage), package.content
