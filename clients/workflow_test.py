"""The whole transcription workflow through a client generated from mmt-sidecar's OpenAPI spec.

Run by scripts/client-workflow.sh, which starts a private server, generates the client package
`mmt_sidecar_client` with openapi-python-client and puts it on PYTHONPATH:

    python clients/workflow_test.py http://127.0.0.1:PORT/api

Only the generated API functions and models are used; no hand-written HTTP. Prints each step and
ends with `client workflow: N passed, M failed`; exits 1 when anything failed.
"""

from __future__ import annotations

import sys
import traceback
import uuid
from http import HTTPStatus
from typing import Any, Callable

from mmt_sidecar_client import AuthenticatedClient, Client
from mmt_sidecar_client.api.auth import auth_login
from mmt_sidecar_client.api.encounters import encounters_create
from mmt_sidecar_client.api.patients import patients_list
from mmt_sidecar_client.api.reference import facilities_list
from mmt_sidecar_client.api.transcriptions import (
    transcriptions_approve,
    transcriptions_create,
    transcriptions_file,
    transcriptions_get,
    transcriptions_revisions,
    transcriptions_submit,
    transcriptions_update,
)
from mmt_sidecar_client.models import (
    EncounterInput,
    LoginRequest,
    Problem,
    SegmentInput,
    Status,
    TranscriptionCreate,
    TranscriptionEdit,
)
from mmt_sidecar_client.types import Response

USERNAME = "drgarcia"
PASSWORD = "Physician-Garcia-2"
SEARCH = "Muñoz"


class CheckFailed(Exception):
    pass


def expect(cond: bool, message: str) -> None:
    if not cond:
        raise CheckFailed(message)


def ok(resp: Response[Any], status: int, what: str) -> Any:
    """The parsed body of a response that must have `status`; otherwise a readable failure."""
    if resp.status_code != status:
        body = resp.parsed if isinstance(resp.parsed, Problem) else resp.content[:500]
        if isinstance(body, Problem):
            body = f"{body.status} {body.title}: {body.detail} (request_id {body.request_id})"
        raise CheckFailed(f"{what}: expected HTTP {status}, got {int(resp.status_code)}: {body}")
    return resp.parsed


def etag_of(resp: Response[Any]) -> str:
    tag = resp.headers.get("etag")
    expect(tag is not None, "response has no ETag header")
    return tag


def main(base_url: str) -> int:
    passed = 0
    failed = 0
    state: dict[str, Any] = {}
    anon = Client(base_url=base_url, timeout=30.0)

    def step(name: str, fn: Callable[[], str]) -> bool:
        nonlocal passed, failed
        try:
            detail = fn()
        except CheckFailed as e:
            failed += 1
            print(f"FAIL  {name}: {e}", flush=True)
            return False
        except Exception:  # a generated model that cannot parse the response, a connection error...
            failed += 1
            print(f"FAIL  {name}: exception\n{traceback.format_exc()}", flush=True)
            return False
        passed += 1
        print(f"ok    {name}: {detail}", flush=True)
        return True

    def login() -> str:
        token = ok(
            auth_login.sync_detailed(client=anon, body=LoginRequest(username=USERNAME, password=PASSWORD)),
            200,
            "POST /auth/login",
        )
        expect(token.access_token != "", "empty access token")
        expect(token.user.username == USERNAME, f"signed in as {token.user.username!r}")
        state["client"] = AuthenticatedClient(base_url=base_url, token=token.access_token, timeout=30.0)
        return f"signed in as {token.user.username} (token_type {token.token_type})"

    def facilities() -> str:
        items = ok(facilities_list.sync_detailed(client=state["client"]), 200, "GET /openemr/facilities")
        expect(len(items) > 0, "no facilities")
        state["facility_id"] = items[0].id
        return f"{len(items)} facilities, first {items[0].name!r} (id {items[0].id})"

    def search_patient() -> str:
        page = ok(
            patients_list.sync_detailed(client=state["client"], search=SEARCH, page_size=5),
            200,
            f"GET /patients?search={SEARCH}",
        )
        expect(len(page.items) > 0, f"no patient matches {SEARCH!r}")
        p = page.items[0]
        expect(SEARCH.lower() in f"{p.first_name} {p.last_name}".lower(), f"first hit is {p.last_name!r}")
        state["pid"] = p.pid
        return f"{page.total} match(es); using pid {p.pid} {p.first_name} {p.last_name}"

    def create_encounter() -> str:
        enc = ok(
            encounters_create.sync_detailed(
                client=state["client"],
                body=EncounterInput(
                    pid=state["pid"], reason="Dictated visit (client workflow test)", facility_id=state["facility_id"]
                ),
            ),
            201,
            "POST /encounters",
        )
        expect(enc.pid == state["pid"], f"encounter is for pid {enc.pid}")
        state["encounter"] = enc.encounter
        return f"encounter {enc.encounter} for pid {enc.pid}"

    def create_body() -> TranscriptionCreate:
        return TranscriptionCreate(
            id=state["tid"],
            pid=state["pid"],
            encounter=state["encounter"],
            title="Follow-up visit",
            segments=[
                SegmentInput(
                    start_ms=0,
                    end_ms=4200,
                    speaker_label="Dr. Garcia",
                    speaker_role="clinician",
                    text="Patient returns for follow-up of hypertension.",
                    confidence=0.94,
                ),
                SegmentInput(
                    start_ms=4200,
                    end_ms=7800,
                    speaker_label="Patient",
                    speaker_role="patient",
                    text="I have been taking the medication every morning.",
                    confidence=0.88,
                ),
            ],
        )

    def create_transcription() -> str:
        state["tid"] = str(uuid.uuid4())
        resp = transcriptions_create.sync_detailed(client=state["client"], body=create_body())
        t = ok(resp, 201, "POST /transcriptions")
        expect(t.id == state["tid"], f"id {t.id} is not the client's {state['tid']}")
        expect(t.status == Status.DRAFT, f"status {t.status}")
        expect(t.encounter == state["encounter"], f"encounter {t.encounter}")
        tag = etag_of(resp)
        expect(tag.strip('"') == str(t.version), f"ETag {tag} does not match version {t.version}")
        state["etag"] = tag
        state["created_version"] = t.version
        return f"201 {t.id} status {t.status.value} version {t.version} ETag {tag}"

    def create_again() -> str:
        resp = transcriptions_create.sync_detailed(client=state["client"], body=create_body())
        t = ok(resp, 200, "POST /transcriptions (same id again)")
        expect(t.id == state["tid"], f"returned id {t.id}")
        expect(t.version == state["created_version"], f"version changed to {t.version}")
        return f"200, the same transcription {t.id} (version {t.version})"

    def patch_text() -> str:
        text = (
            "Hypertension follow-up. Adherent to lisinopril 10 mg daily. "
            "BP 128/82. Continue current regimen; recheck in 3 months."
        )
        resp = transcriptions_update.sync_detailed(
            state["tid"],
            client=state["client"],
            body=TranscriptionEdit(text=text, reason="clinician edit"),
            if_match=state["etag"],
        )
        t = ok(resp, 200, f"PATCH /transcriptions/{state['tid']} (If-Match {state['etag']})")
        expect(t.text == text, "text was not changed")
        expect(t.version > state["created_version"], f"version did not advance ({t.version})")
        state["etag"] = etag_of(resp)
        state["text"] = text
        return f"text edited, version {t.version}, ETag {state['etag']}"

    def submit() -> str:
        resp = transcriptions_submit.sync_detailed(state["tid"], client=state["client"], if_match=state["etag"])
        t = ok(resp, 200, "POST /transcriptions/{id}/submit")
        expect(t.status == Status.PENDING_REVIEW, f"status {t.status}")
        state["etag"] = etag_of(resp)
        return f"status {t.status.value}, allowed {t.allowed_actions}"

    def approve() -> str:
        resp = transcriptions_approve.sync_detailed(state["tid"], client=state["client"], if_match=state["etag"])
        t = ok(resp, 200, "POST /transcriptions/{id}/approve")
        expect(t.status == Status.APPROVED, f"status {t.status}")
        return f"status {t.status.value}, approved_by {t.approved_by}"

    def file_note() -> str:
        t = ok(
            transcriptions_file.sync_detailed(state["tid"], client=state["client"]),
            200,
            "POST /transcriptions/{id}/integrate_with_openemr",
        )
        expect(t.status == Status.FILED, f"status {t.status}")
        return f"status {t.status.value}"

    def read_back() -> str:
        t = ok(transcriptions_get.sync_detailed(state["tid"], client=state["client"]), 200, "GET /transcriptions/{id}")
        expect(t.status == Status.FILED, f"status {t.status}")
        expect(t.filed is not None and isinstance(t.filed.note_id, int), f"no filed note id: {t.filed!r}")
        expect(t.text == state["text"], "text differs from the edit")
        expect(isinstance(t.segments, list) and len(t.segments) == 2, f"segments {t.segments!r}")
        return f"filed as form_clinical_notes id {t.filed.note_id} (form_id {t.filed.form_id}), 2 segments"

    def revisions() -> str:
        revs = ok(
            transcriptions_revisions.sync_detailed(state["tid"], client=state["client"]),
            200,
            "GET /transcriptions/{id}/revisions",
        )
        expect(len(revs) >= 2, f"{len(revs)} revision(s)")
        expect(revs[-1].text == state["text"], "the last revision is not the edited text")
        return f"{len(revs)} revisions: " + ", ".join(f"#{r.revision_no} {r.reason!r}" for r in revs)

    steps = [
        ("log in as drgarcia", login),
        ("list facilities", facilities),
        (f"search patients for {SEARCH!r}", search_patient),
        ("create an encounter", create_encounter),
        ("create a transcription with segments", create_transcription),
        ("re-send the same create", create_again),
        ("patch the text with If-Match", patch_text),
        ("submit", submit),
        ("approve", approve),
        ("file into OpenEMR (integrate_with_openemr)", file_note),
        ("read it back", read_back),
        ("read revisions", revisions),
    ]
    not_run = 0
    for i, (name, fn) in enumerate(steps):
        if not step(name, fn):
            # Every later step depends on this one.
            not_run = len(steps) - i - 1
            for later, _ in steps[i + 1 :]:
                print(f"skip  {later}")
            break
    failed += not_run
    print(f"client workflow: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: workflow_test.py BASE_URL (e.g. http://127.0.0.1:8001/api)", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1].rstrip("/")))
