"""FHIR conformance of a running sidecar, judged by libraries no one here wrote.

Every resource the sidecar returns is parsed by `fhir.resources` 6.1 (R4 4.0.1 models, which
refuse unknown elements and malformed values); the FHIR client `fhirpy` runs searches and follows
their `next` links to the end. Usage: fhir_conformance.py http://host:port
"""

import base64
import json
import sys
import time

import requests
from fhir.resources.allergyintolerance import AllergyIntolerance
from fhir.resources.binary import Binary
from fhir.resources.bundle import Bundle
from fhir.resources.documentreference import DocumentReference
from fhir.resources.condition import Condition
from fhir.resources.encounter import Encounter
from fhir.resources.group import Group
from fhir.resources.medicationrequest import MedicationRequest
from fhir.resources.appointment import Appointment
from fhir.resources.observation import Observation
from fhir.resources.capabilitystatement import CapabilityStatement
from fhir.resources.communication import Communication
from fhir.resources.operationoutcome import OperationOutcome
from fhir.resources.organization import Organization
from fhir.resources.patient import Patient
from fhir.resources.practitioner import Practitioner
from fhir.resources.schedule import Schedule
from fhir.resources.slot import Slot
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome as FhirOperationOutcome

USERNAME, PASSWORD = "drgarcia", "Physician-Garcia-2"
ADMIN, ADMIN_PASSWORD = "admin", "Sidecar-Admin-1"
FHIR_JSON = "application/fhir+json"


def check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)
    print(f"ok: {what}")


def get(base: str, path: str, token: str | None, params=None) -> requests.Response:
    headers = {"Accept": FHIR_JSON}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = requests.get(f"{base}/fhir/r4{path}", headers=headers, params=params, timeout=30)
    content_type = response.headers.get("content-type", "")
    assert content_type.startswith(FHIR_JSON), f"GET {path} answered {content_type}"

    return response


def main(base: str) -> int:
    login = requests.post(f"{base}/api/auth/login/", json={"username": USERNAME, "password": PASSWORD}, timeout=30)
    login.raise_for_status()
    token = login.json()["access_token"]

    capabilities = CapabilityStatement.parse_obj(get(base, "/metadata", None).json())
    served = {r.type for rest in capabilities.rest for r in rest.resource}
    check(served == {"Patient", "Condition", "AllergyIntolerance", "Encounter", "Observation", "MedicationRequest", "Appointment", "Schedule", "Slot", "Practitioner", "Organization", "DocumentReference", "Binary", "Communication", "Group"}, "the CapabilityStatement is valid R4 and lists what is served")

    missing = get(base, "/Patient/00000000-0000-4000-8000-000000000000", token)
    check(missing.status_code == 404, "an unknown patient is 404")
    OperationOutcome.parse_obj(missing.json())
    refused = get(base, "/Patient", None)
    check(refused.status_code == 401, "a search without credentials is 401")
    OperationOutcome.parse_obj(refused.json())
    check(True, "errors are valid R4 OperationOutcomes")

    page = get(base, "/Patient", token, {"_count": "50"}).json()
    Bundle.parse_obj(page)
    check(len(page["entry"]) == 50, "a search page is a valid R4 searchset Bundle")

    client = SyncFHIRClient(f"{base}/fhir/r4", authorization=f"Bearer {token}")
    for search in [
        client.resources("Patient").search(gender="female").limit(17),
        client.resources("Patient").search(birthdate__ge="1970-01-01").limit(25),
        client.resources("Patient").search(name="zoe"),
    ]:
        found = search.fetch_all()
        total = requests.get(
            f"{base}/fhir/r4/Patient",
            params={**search.params, "_count": "0"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ).json()["total"]
        ids = [p.id for p in found]
        check(len(ids) == len(set(ids)) == total and total > 0, f"fhirpy paged {dict(search.params)} to its end: {total} patients, each once")
        for resource in found:
            patient = Patient.parse_obj(resource.serialize())
            read = Patient.parse_obj(get(base, f"/Patient/{patient.id}", token).json())
            assert read.id == patient.id and read.birthDate == patient.birthDate
    check(True, "every patient found and read is a valid R4 Patient")

    for model in (Practitioner, Organization, Schedule):
        bundle = Bundle.parse_obj(get(base, f"/{model.__name__}", token).json())
        for item in bundle.entry:
            model.parse_obj(get(base, f"/{model.__name__}/{item.resource.id}", token).json())
        check(bool(bundle.entry), f"{len(bundle.entry)} {model.__name__} resources are valid R4")

    slots, refused, free = 0, 0, None
    for schedule in Bundle.parse_obj(get(base, "/Schedule", token).json()).entry:
        search = client.resources("Slot").search(schedule=f"Schedule/{schedule.resource.id}").search(**{"service-type": "5"})
        try:
            found = search.limit(50).fetch_all()
        except FhirOperationOutcome as outcome:
            # A physician reads only their own calendar while docs_see_entire_calendar is off.
            assert "own calendar" in str(outcome), outcome
            refused += 1
            continue
        for resource in found:
            slot = Slot.parse_obj(resource.serialize())
            assert slot.schedule.reference == f"Schedule/{schedule.resource.id}" and slot.status == "free"
            slots += 1
        free = found[0] if found else free
    Slot.parse_obj(get(base, f"/Slot/{free.id}", token).json())
    check(slots > 0 and refused > 0, f"{slots} free Slots of drgarcia's Schedule this week, paged by fhirpy, are valid R4; {refused} other calendars refused")

    patient = client.resources("Patient").search(name="zoe").first()
    appointment = client.resource(
        "Appointment",
        status="booked",
        slot=[{"reference": f"Slot/{free.id}"}],
        participant=[{"actor": {"reference": f"Patient/{patient.id}"}, "status": "accepted"}],
    )
    appointment.save()
    booked = Appointment.parse_obj(get(base, f"/Appointment/{appointment.id}", token).json())
    check(booked.start == Slot.parse_obj(free.serialize()).start, "fhirpy books a free Slot as a valid R4 Appointment, read back by its id")

    documents(base, token, client)
    messages(base, token, client)

    counts = {Condition: 0, AllergyIntolerance: 0, Encounter: 0, Observation: 0, MedicationRequest: 0, Appointment: 0}
    for patient in client.resources("Patient").search(birthdate__le="1970-12-31").limit(100).fetch_all():
        for model in counts:
            name = model.__name__
            bundle = Bundle.parse_obj(get(base, f"/{name}", token, {"patient": f"Patient/{patient.id}"}).json())
            for item in bundle.entry or []:
                resource = model.parse_obj(item.resource.dict())
                if model is Appointment:
                    reference = resource.participant[0].actor
                else:
                    reference = resource.patient if model is AllergyIntolerance else resource.subject
                assert reference.reference == f"Patient/{patient.id}", reference
                model.parse_obj(get(base, f"/{name}/{resource.id}", token).json())
                counts[model] += 1
    found = ", ".join(f"{n} {m.__name__}" for m, n in counts.items())
    check(all(counts.values()), f"patients' resources searched and read are valid R4: {found}")
    bulk_export(base)
    return 0


def bulk_export(base: str) -> None:
    login = requests.post(f"{base}/api/auth/login/", json={"username": ADMIN, "password": ADMIN_PASSWORD}, timeout=30)
    login.raise_for_status()
    headers = {"Authorization": f"Bearer {login.json()['access_token']}", "Accept": FHIR_JSON, "Prefer": "respond-async"}
    groups = Bundle.parse_obj(requests.get(f"{base}/fhir/r4/Group", headers=headers, timeout=30).json())
    group = max((Group.parse_obj(e.resource.dict()) for e in groups.entry or []), key=lambda g: g.quantity)
    check(group.quantity > 0, f"provider groups are valid R4 Groups ({len(groups.entry)}; the largest has {group.quantity} patients)")
    for url, types in [("/Patient/$export", None), (f"/Group/{group.id}/$export", "Patient,Encounter")]:
        started = requests.get(f"{base}/fhir/r4{url}", headers=headers, params={"_type": types} if types else None, timeout=30)
        check(started.status_code == 202, f"{url} starts an export (202)")
        status = started.headers["Content-Location"]
        while (reply := requests.get(status, headers=headers, timeout=30)).status_code == 202:
            time.sleep(0.2)
        check(reply.status_code == 200, f"{url} finished: {reply.status_code}")
        manifest = reply.json()
        models = {m.__name__: m for m in (Patient, Encounter, Condition, AllergyIntolerance, MedicationRequest, Observation)}
        lines = 0
        for output in manifest["output"]:
            body = requests.get(output["url"], headers=headers, timeout=120)
            assert body.headers["content-type"] == "application/fhir+ndjson", body.headers["content-type"]
            resources = [models[output["type"]].parse_obj(json.loads(line)) for line in body.text.splitlines()]
            assert len(resources) == output["count"], output
            lines += len(resources)
        kinds = sorted(o["type"] for o in manifest["output"])
        check(lines > 0 and (types is None or set(kinds) <= set(types.split(","))), f"{url}: {lines} NDJSON lines are valid R4 ({', '.join(kinds)})")


def documents(base: str, token: str, client: SyncFHIRClient) -> None:
    """Files a note with fhirpy, uploads a document through /api, and validates both as they come back."""
    patient = client.resources("Patient").search(name="zoe").first()
    encounter = client.resources("Encounter").search(patient=f"Patient/{patient.id}").first()
    text = "Seen today; plan unchanged.\nZoë to return in 2 weeks."
    note = client.resource(
        "DocumentReference",
        status="current",
        type={"coding": [{"system": "http://loinc.org", "code": "11506-3"}]},
        subject={"reference": f"Patient/{patient.id}"},
        content=[{"attachment": {"contentType": "text/plain", "data": base64.b64encode(text.encode()).decode()}}],
        context={"encounter": [{"reference": f"Encounter/{encounter.id}"}]},
    )
    note.save()
    filed = DocumentReference.parse_obj(get(base, f"/DocumentReference/{note.id}", token).json())
    check(base64.b64decode(filed.content[0].attachment.data).decode() == text, "fhirpy files a clinical note, read back as a valid R4 DocumentReference")

    listed = requests.get(f"{base}/api/patients/", params={"search": "zoe"}, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    pid = next(p["pid"] for p in listed.json()["items"] if p["uuid"] == patient.id)
    pdf = b"%PDF-1.4\n% conformance\n%%EOF\n"
    uploaded = requests.post(
        f"{base}/api/patients/{pid}/documents/",
        headers={"Authorization": f"Bearer {token}"},
        data={"category": "3"},
        files={"file": ("referral.pdf", pdf, "application/pdf")},
        timeout=30,
    )
    uploaded.raise_for_status()
    searched = client.resources("DocumentReference").search(patient=f"Patient/{patient.id}").fetch_all()
    found = [DocumentReference.parse_obj(resource.serialize()) for resource in searched]
    kinds = {d.category[0].coding[0].code if d.category[0].coding else d.category[0].text for d in found}
    check(note.id in {d.id for d in found} and "Medical Record" in kinds, f"{len(found)} DocumentReferences of a patient (notes and documents) are valid R4")
    document = next(d for d in found if d.content[0].attachment.url)
    url = document.content[0].attachment.url
    raw = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    check(raw.content == pdf and raw.headers["content-type"] == "application/pdf", "a DocumentReference's url gives the document's bytes")
    binary = Binary.parse_obj(requests.get(url, headers={"Authorization": f"Bearer {token}", "Accept": FHIR_JSON}, timeout=30).json())
    check(base64.b64decode(binary.data) == pdf, "and, asked for FHIR JSON, a valid R4 Binary holding them")


def messages(base: str, token: str, client: SyncFHIRClient) -> None:
    """Sends messages with fhirpy, then pages the mailbox to its end."""
    nurse = next(p for p in client.resources("Practitioner").fetch_all() if p.id)
    sent = []
    for i in range(3):
        message = client.resource(
            "Communication",
            status="in-progress",
            category=[{"text": "Chart Note"}],
            recipient=[{"reference": f"Practitioner/{nurse.id}"}],
            payload=[{"contentString": f"Conformance message {i}"}],
        )
        message.save()
        sent.append(message.id)
    read = Communication.parse_obj(get(base, f"/Communication/{sent[0]}", token).json())
    check(read.payload[0].contentString.endswith("Conformance message 0"), "fhirpy sends messages, read back as valid R4 Communications")
    found = [Communication.parse_obj(c.serialize()) for c in client.resources("Communication").limit(2).fetch_all()]
    ids = [c.id for c in found]
    check(set(sent) <= set(ids) and len(ids) == len(set(ids)), f"fhirpy paged the mailbox to its end: {len(ids)} valid R4 Communications, each once")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1].rstrip("/")))
