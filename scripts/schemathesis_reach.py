"""Schemathesis hooks: one valid request for each operation that generated data cannot reach.

Generated ids are almost never ids that exist (transcriptions are client-chosen UUIDs, documents
and jobs are made by other calls), and some bodies must fit state the server holds (a free slot, a
transcription awaiting review, a signed webhook). For each such operation a builder below makes
what it needs through the API itself, just before that operation's examples run, and adds one
example case; schemathesis sends it with every check, so each operation is seen answering a
success, and its success response is checked against the spec. Generated cases run as before.

Loaded by scripts/schemathesis.sh through SCHEMATHESIS_HOOKS; reads MMT_ST_BASE (the API root,
e.g. http://127.0.0.1:8080/api) and MMT_ST_TOKEN (the admin's access token).
"""

import ast
import base64
import datetime
import hashlib
import hmac
import json
import os
import struct
import sys
import subprocess
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid

import schemathesis

BASE = os.environ["MMT_ST_BASE"]
TOKEN = os.environ["MMT_ST_TOKEN"]
# Where each response schemathesis itself got is noted (operation id and status), for reached.py:
# the builders' own requests are not counted.
SEEN = os.environ["MMT_ST_SEEN"]
SEEN_LOCK = threading.Lock()
FHIR = BASE.removesuffix("/api") + "/fhir/r4"
DEMO_PID = 1
GARCIA = 2
OFFICE_VISIT = 5


# CPython 3.11 keeps the AST constructor's recursion depth per interpreter, not per thread, so two
# schemathesis workers parsing at once (Hypothesis reads lambdas' source to describe them) can fail
# with "AST constructor recursion depth mismatch"; parsing takes turns instead.
_PARSE, _PARSE_LOCK = ast.parse, threading.Lock()


def _parse_in_turn(*args, **kwargs):
    with _PARSE_LOCK:
        return _PARSE(*args, **kwargs)


ast.parse = _parse_in_turn


class Refused(Exception):
    pass


def call(method, path, body=None, *, token=TOKEN, headers=None, raw=None, content_type=None):
    """One request to the sidecar; returns (status, parsed JSON body or text, headers)."""
    data = raw
    all_headers = {"authorization": f"Bearer {token}", **(headers or {})}
    if body is not None:
        data = json.dumps(body).encode()
        all_headers["content-type"] = "application/json"
    if content_type:
        all_headers["content-type"] = content_type
    url = path if path.startswith("http") else BASE + path
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, payload, got = response.status, response.read(), response.headers
    except urllib.error.HTTPError as err:
        status, payload, got = err.code, err.read(), err.headers
    try:
        parsed = json.loads(payload) if payload else None
    except ValueError:
        parsed = payload.decode(errors="replace")
    return status, parsed, got


def ok(method, path, body=None, **kwargs):
    status, parsed, headers = call(method, path, body, **kwargs)
    if status >= 300:
        raise Refused(f"{method} {path} answered {status}: {parsed}")
    return parsed, headers


def sign_in(username, password):
    body, _ = ok("POST", "/auth/login/", {"username": username, "password": password}, token="")
    return body


def multipart(fields, files):
    """A multipart/form-data body: fields {name: text}, files {name: (file name, bytes, type)}."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (file_name, content, kind) in files.items():
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{file_name}"\r\n'
                f"Content-Type: {kind}\r\n\r\n")
        parts.append(head.encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


# A one-page PDF saying "Schemathesis reach", so uploads and OCR get a real document.
PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
       b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
       b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 300 144]/Contents 4 0 R"
       b"/Resources<</Font<</F1 5 0 R>>>>>>endobj\n"
       b"4 0 obj<</Length 52>>stream\nBT /F1 18 Tf 20 60 Td (Schemathesis reach) Tj ET\nendstream endobj\n"
       b"5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\n"
       b"trailer<</Root 1 0 R>>\n%%EOF\n")


def document_category():
    """The first category below the root, as OpenEMR's own screens offer it."""
    tree, _ = ok("GET", "/documents/categories/")
    root = tree["items"][0]
    return (root["children"] or [root])[0]["id"]


def upload_document(pid=DEMO_PID):
    category = document_category()
    raw, kind = multipart({"category": str(category)}, {"file": ("reach.pdf", PDF, "application/pdf")})
    body, _ = ok("POST", f"/patients/{pid}/documents/", raw=raw, content_type=kind)
    return body


def encounter(pid=DEMO_PID):
    body, _ = ok("POST", "/encounters/", {"pid": pid, "reason": "Schemathesis reach", "facility_id": 3})
    return body


SEGMENTS = [{"start_ms": 0, "end_ms": 3000, "speaker_label": "Dr. Garcia", "speaker_role": "clinician",
             "text": "Blood pressure is well controlled.", "confidence": 0.9}]


def transcription(status="draft", *, with_encounter=True):
    """A new transcription brought to `status`; returns (id, ETag)."""
    tid = str(uuid.uuid4())
    body = {"id": tid, "pid": DEMO_PID, "title": "Schemathesis reach", "segments": SEGMENTS}
    if with_encounter:
        body["encounter"] = encounter()["encounter"]
    _, headers = ok("POST", "/transcriptions/", body)
    etag = headers["etag"]
    steps = {"draft": [], "pending_review": ["submit"], "approved": ["submit", "approve"],
             "rejected": ["submit", "reject"], "filed": ["submit", "approve", "integrate_with_openemr"]}
    for step in steps[status]:
        payload = {"reason": "Schemathesis reach"} if step == "reject" else None
        _, headers = ok("POST", f"/transcriptions/{tid}/{step}/", payload, headers={"if-match": etag})
        etag = headers.get("etag", etag)
    return tid, etag


BUILDERS = {}


def on(resource_id, **rest):
    """A case on the resource whose path names it as `{id}`."""
    return dict(path_parameters={"id": resource_id}, **rest)

# Audio is sent as the bytes it is, in each type the upload accepts.
AUDIO_TYPES = ["audio/mp4", "audio/m4a", "audio/x-m4a", "audio/aac", "audio/mpeg", "audio/wav", "audio/x-wav",
               "audio/ogg", "audio/webm", "audio/flac", "audio/3gpp", "audio/amr"]
schemathesis.serializer.alias(AUDIO_TYPES, "application/octet-stream")
schemathesis.serializer.alias("application/hl7-v2", "text/plain")


def reach(*operation_ids):
    def register(build):
        for operation_id in operation_ids:
            BUILDERS[operation_id] = build
        return build

    return register


# --- transcriptions ---------------------------------------------------------------------------

def at(status, **rest):
    """A case on a new transcription brought to `status`, naming its current version."""
    tid, etag = transcription(status)
    return on(tid, headers={"If-Match": etag}, **rest)


@reach("transcriptions_update", "transcriptions_replace")
def _():
    return at("draft", body={"text": "Edited by schemathesis.", "reason": "reach"})


@reach("transcriptions_add_segments", "transcriptions_replace_segments")
def _():
    return at("draft", body={"segments": SEGMENTS})


@reach("transcriptions_submit")
def _():
    return at("draft")


@reach("transcriptions_approve")
def _():
    return at("pending_review")


@reach("transcriptions_reject")
def _():
    return at("pending_review", body={"reason": "Needs the plan."})


@reach("transcriptions_reopen")
def _():
    return at("rejected")


@reach("transcriptions_file")
def _():
    tid, _ = transcription("approved")
    return on(tid)


@reach("transcriptions_hl7")
def _():
    tid, _ = transcription("filed")
    return on(tid)


# A tenth of a second of silence as a WAV file.
WAV = (b"RIFF" + struct.pack("<I", 36 + 1600) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
       + b"data" + struct.pack("<I", 1600) + bytes(1600))


def audio_headers():
    """The whole recording in one chunk."""
    return {"Upload-Offset": "0", "Upload-Length": str(len(WAV)), "X-Audio-SHA256": hashlib.sha256(WAV).hexdigest()}


@reach("transcriptions_audio_upload")
def _():
    tid, _ = transcription()
    return on(tid, body=WAV, media_type="audio/wav", headers=audio_headers())


@reach("transcriptions_audio_get")
def _():
    tid, _ = transcription()
    ok("PUT", f"/transcriptions/{tid}/audio/", raw=WAV, content_type="audio/wav",
       headers=audio_headers())
    return on(tid)


@reach("transcription_documents_attach")
def _():
    tid, _ = transcription()
    return on(tid, body={"document_id": upload_document()["id"]})


@reach("transcription_documents_detach")
def _():
    tid, _ = transcription()
    document = upload_document()["id"]
    ok("POST", f"/transcriptions/{tid}/documents/", {"document_id": document})
    return dict(path_parameters={"id": tid, "document_id": document})


# --- documents and jobs -----------------------------------------------------------------------

@reach("patient_documents_upload")
def _():
    return dict(path_parameters={"pid": DEMO_PID}, media_type="multipart/form-data",
                body={"category": document_category(), "file": PDF},
                multipart_content_types={"file": "application/pdf"})


@reach("document_get", "document_content", "document_view_link", "document_ocr_start", "document_delete")
def _():
    return on(upload_document()["id"])


@reach("document_ocr_text")
def _():
    document = upload_document()["id"]
    ok("POST", f"/documents/{document}/ocr/")
    return on(document)


@reach("document_view")
def _():
    document = upload_document()["id"]
    link, _ = ok("POST", f"/documents/{document}/view/")
    return dict(path_parameters={"token": link["url"].rstrip("/").rsplit("/", 1)[-1]})


@reach("jobs_get", "jobs_cancel")
def _():
    document = upload_document()["id"]
    job, _ = ok("POST", f"/documents/{document}/ocr/")
    return on(job["job_id"])


# --- scheduling -------------------------------------------------------------------------------

def free_slot():
    day = datetime.date.today() + datetime.timedelta(days=1)
    for _ in range(60):
        query = f"provider={GARCIA}&category={OFFICE_VISIT}&from={day}&to={day}"
        slots, _ = ok("GET", f"/appointments/slots/?{query}")
        if slots["slots"]:
            return slots["slots"][0]["start"]
        day += datetime.timedelta(days=1)
    raise Refused("no free slot in 60 days")


def book(hold=False):
    body = {"pid": DEMO_PID, "provider_id": GARCIA, "facility_id": 3, "category_id": OFFICE_VISIT,
            "start": free_slot()[:16], "hold": hold}
    appointment, _ = ok("POST", "/appointments/", body)
    return appointment


@reach("appointments_book")
def _():
    return dict(body={"pid": DEMO_PID, "provider_id": GARCIA, "facility_id": 3, "category_id": OFFICE_VISIT,
                      "start": free_slot()[:16]})


@reach("appointments_list")
def _():
    today = datetime.date.today()
    return dict(query={"from": str(today), "to": str(today + datetime.timedelta(days=30))})


@reach("appointments_slots")
def _():
    day = datetime.date.today() + datetime.timedelta(days=1)
    return dict(query={"provider": GARCIA, "category": OFFICE_VISIT, "from": str(day), "to": str(day)})


@reach("provider_schedule")
def _():
    today = datetime.date.today()
    return on(GARCIA,
                query={"from": str(today), "to": str(today + datetime.timedelta(days=7))})


@reach("appointments_update")
def _():
    return on(book()["id"], body={"status": "@", "room": "Room 2"})


# --- billing and payment ------------------------------------------------------------------------

def price_visits():
    rules = {"rules": [{"category_id": OFFICE_VISIT, "patient_kind": "new", "amount": "80.00"},
                       {"category_id": OFFICE_VISIT, "patient_kind": "returning", "amount": "60.00"}]}
    ok("PUT", "/billing/prices/", rules)


@reach("billing_price_quote")
def _():
    price_visits()
    return dict(query={"pid": DEMO_PID, "category_id": OFFICE_VISIT})


@reach("appointment_checkout")
def _():
    price_visits()
    return on(book(hold=True)["id"])


def charge():
    visit = encounter()["encounter"]
    body, headers = ok("POST", f"/encounters/{visit}/charges/", {"code_type": "CPT4", "code": "99213"})
    return body, headers


@reach("encounter_charges_create")
def _():
    return dict(path_parameters={"encounter": encounter()["encounter"]},
                body={"code_type": "CPT4", "code": "99213", "units": 1})


@reach("charge_update")
def _():
    body, headers = charge()
    return on(body["id"], headers={"If-Match": headers["etag"]}, body={"units": 2})


@reach("stripe_webhook")
def _():
    event = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "type": "customer.created", "object": "event",
                        "data": {"object": {"id": "cus_reach", "object": "customer"}}}).encode()
    stamp = int(datetime.datetime.now().timestamp())
    secret = os.environ["MMT_ST_STRIPE_WEBHOOK_SECRET"].encode()
    digest = hmac.new(secret, f"{stamp}.".encode() + event, hashlib.sha256).hexdigest()
    return dict(body=event, media_type="application/octet-stream",
                headers={"Stripe-Signature": f"t={stamp},v1={digest}"})


# --- messaging, chat, notifications --------------------------------------------------------------

def message():
    sent, _ = ok("POST", "/messages/", {"to": ["nkim"], "pid": DEMO_PID, "title": "Lab Results",
                                        "text": "Please call about the A1c."})
    return sent[0] if isinstance(sent, list) else sent["items"][0]


@reach("messages_update")
def _():
    return on(message()["id"], body={"status": "Done"})


@reach("messages_delete")
def _():
    return on(message()["id"])


@reach("notifications_read")
def _():
    ok("POST", "/messages/", {"to": ["admin"], "title": "Lab Results", "text": "A note to self."})
    listed, _ = ok("GET", "/notifications/")
    return on(listed["items"][0]["id"])


@reach("chat_members_add")
def _():
    room, _ = ok("POST", "/chat/rooms/", {"pid": DEMO_PID})
    return on(room["id"], body={"users": ["nkim"]})


# --- the chart --------------------------------------------------------------------------------

def prescription():
    body = {"drug": "Lisinopril", "size": "10", "unit": "mg", "dosage": "1", "quantity": "30"}
    made, _ = ok("POST", f"/patients/{DEMO_PID}/prescriptions/", body)
    return made


@reach("patient_prescriptions_pdf")
def _():
    return dict(path_parameters={"pid": DEMO_PID}, query={"ids": str(prescription()["id"])})


@reach("prescriptions_send")
def _():
    return on(prescription()["id"], body={"to": "pharmacy@clinic.example"})


@reach("patient_care_team_members_add")
def _():
    return dict(path_parameters={"pid": new_patient()}, body={"user_id": GARCIA, "role": "nurse"})


@reach("patient_care_team_update")
def _():
    pid = new_patient()
    ok("POST", f"/patients/{pid}/care-team/members/", {"user_id": GARCIA, "role": "nurse"})
    return dict(path_parameters={"pid": pid}, body={"name": "Reach team"})


def new_patient():
    body = {"first_name": "Reach", "last_name": f"Schemathesis{uuid.uuid4().hex[:6]}", "dob": "1980-02-03",
            "sex": "Female"}
    made, _ = ok("POST", "/patients/", body)
    return made["pid"]


@reach("patients_delete")
def _():
    return dict(path_parameters={"pid": new_patient()})


@reach("patients_break_glass")
def _():
    return dict(path_parameters={"pid": DEMO_PID}, body={"reason": "Unconscious in the emergency department"})


# --- sign-in ------------------------------------------------------------------------------------

@reach("auth_refresh")
def _():
    return dict(body={"refresh_token": sign_in("fdoconnor", "Front-OConnor-6")["refresh_token"]})


@reach("auth_refresh_if_active")
def _():
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    token = sign_in("fdoconnor", "Front-OConnor-6")["refresh_token"]
    return dict(body={"refresh_token": token, "last_activity_at": now})


ADMIN_PASSWORD = "Sidecar-Admin-1"
# Each second-factor operation runs as its own user (scripts/schemathesis.toml sends their tokens),
# so no sign-in another request needs ever meets a second factor.
ENROLS = ("nkim", "Clinician-Kim-4")
CONFIRMS = ("acctbrown", "Billing-Brown-7")
REMOVES = ("fdmiller", "Front-Miller-5")


def totp(secret, step):
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def enrol(user, token_variable):
    """Starts `user`'s enrolment with the token schemathesis sends as them; returns it and the secret."""
    token = os.environ[token_variable]
    started, _ = ok("POST", "/auth/mfa/totp/", {"password": user[1]}, token=token)
    return token, started["secret"]


@reach("auth_mfa_totp_enrol")
def _():
    return dict(body={"password": ENROLS[1]})


@reach("auth_mfa_totp_confirm")
def _():
    _, secret = enrol(CONFIRMS, "MMT_ST_CONFIRM_TOKEN")
    return dict(body={"code": totp(secret, int(time.time()) // 30)})


@reach("auth_mfa_totp_remove")
def _():
    # Confirmed now with this step's code, removed with the next step's: a code is taken once,
    # and one step either side is accepted.
    token, secret = enrol(REMOVES, "MMT_ST_REMOVE_TOKEN")
    step = int(time.time()) // 30
    ok("POST", "/auth/mfa/totp/verify/", {"code": totp(secret, step)}, token=token)
    return dict(body={"password": REMOVES[1], "code": totp(secret, step + 1)})


# --- administration -----------------------------------------------------------------------------

def new_user():
    body = {"username": f"reach{uuid.uuid4().hex[:8]}", "password": "Tidal-Harbour-42!",
            "admin_password": ADMIN_PASSWORD, "roles": ["doc"], "first_name": "Ana", "last_name": "Ruiz"}
    return body


@reach("admin_users_create")
def _():
    return dict(body=new_user())


@reach("admin_users_roles_set")
def _():
    made, _ = ok("POST", "/admin/users/", new_user())
    return on(made["id"], body={"roles": ["front"]})


# --- HL7 v2 ---------------------------------------------------------------------------------------

def lab_result():
    """Results with no OpenEMR order, for a patient the sidecar cannot match: the message waits to
    be resolved."""
    control = uuid.uuid4().hex[:12]
    return control, "\r".join([
        f"MSH|^~\\&|LAB|ACME LAB|MMT|CLINIC|20261201101500-0500||ORU^R01^ORU_R01|{control}|P|2.5.1",
        "PID|1||EXT-9^^^^MR||Nobody^Reach||19700101|F",
        "OBR|1||F-1|2823-3^Potassium^LN|||20261130083000-0500||||||||||||||||||F",
        "OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.1|N|||F",
    ])


@reach("hl7_receive")
def _():
    return dict(body=lab_result()[1], media_type="application/hl7-v2")


def stored_message():
    control, message = lab_result()
    ok("POST", "/hl7/", raw=message.encode(), content_type="application/hl7-v2")
    listed, _ = ok("GET", "/hl7/messages/")
    return next(m["id"] for m in listed["items"] if m["control_id"] == control)


@reach("hl7_messages_get")
def _():
    return on(stored_message())


@reach("hl7_messages_resolve")
def _():
    return on(stored_message(), body={"pid": DEMO_PID})


# --- catalogue --------------------------------------------------------------------------------------

def workbook():
    path = os.path.join(os.environ["MMT_ST_WORKBOOKS"], "botanitech.xlsx")
    return open(path, "rb").read()


def imported():
    """A finished import of the demo workbook; returns the import."""
    raw, kind = multipart({"supplier": "botanitech"}, {"file": ("botanitech.xlsx", workbook(), XLSX)})
    queued, _ = ok("POST", "/products/imports/", raw=raw, content_type=kind)
    for _ in range(300):
        state, _ = ok("GET", f"/products/imports/{queued['import_id']}/")
        if state["state"] not in ("queued", "running"):
            return state
        time.sleep(0.1)
    raise Refused("the product import did not finish within 30 s")


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@reach("products_import")
def _():
    return dict(media_type="multipart/form-data", body={"supplier": "botanitech", "file": workbook()},
                multipart_content_types={"file": XLSX})


@reach("products_import_get")
def _():
    return on(imported()["id"])


def product():
    imported()
    listed, _ = ok("GET", "/products/")
    return listed["items"][0]["id"]


@reach("products_get")
def _():
    return on(product())


@reach("products_link")
def _():
    return on(product(), body={"drug_id": None})


# --- single sign-on from an OpenEMR session ----------------------------------------------------------

def sql(statement):
    """One statement on the run's database, through scripts/db.sh; returns its rows' text."""
    root = os.path.dirname(os.path.abspath(__file__))
    done = subprocess.run(["bash", os.path.join(root, "db.sh"), "sql", os.environ["MMT_ST_DB"], "openemr",
                           "--batch", "--skip-column-names"], input=statement, capture_output=True, text=True,
                          check=True)
    return done.stdout


def php_string(value):
    return f's:{len(value.encode())}:"{value}";'


@reach("auth_bridge")
def _():
    """The admin's OpenEMR session as OpenEMR 7 writes it (PHP's `php` serialize handler), with its
    session_tracker row."""
    user_id, password = sql("SELECT u.id, s.password FROM users u JOIN users_secure s ON s.id = u.id "
                            "WHERE u.username = 'admin'").split()
    tracker = uuid.uuid4()
    sql(f"INSERT INTO session_tracker (uuid, created, last_updated, number_scripts) "
        f"VALUES (UNHEX('{tracker.hex}'), NOW(), NOW(), 1)")
    session = "".join([
        "site_id|" + php_string("default"), "authUser|" + php_string("admin"), "authPass|" + php_string(password),
        f"authUserID|i:{user_id};", "authProvider|" + php_string("Default"),
    ]).encode() + b"session_database_uuid|s:16:\"" + tracker.bytes + b"\";"
    session_id = f"{uuid.uuid4().hex}-{uuid.uuid4().hex[:8]}"
    with open(os.path.join(os.environ["MMT_ST_SESSIONS"], f"sess_{session_id}"), "wb") as out:
        out.write(session)
    # A change authenticated by cookie must come from the server's own pages.
    return dict(cookies={"OpenEMR": session_id}, headers={"Origin": BASE.removesuffix("/api")})


# --- FHIR R4 ------------------------------------------------------------------------------------------

def fhir(method, path, body=None):
    return ok(method, FHIR + path, body)


def demo_patient():
    return fhir("GET", "/Patient?family=Mu%C3%B1oz&given=Jos%C3%A9")[0]["entry"][0]["resource"]["id"]


def first(search):
    bundle, _ = fhir("GET", search)
    return bundle["entry"][0]["resource"]["id"]


@reach("fhir_allergy_read")
def _():
    ok("POST", f"/patients/{DEMO_PID}/allergies/", {"title": "Penicillin"})
    return on(first(f"/AllergyIntolerance?patient={demo_patient()}"))


@reach("fhir_condition_read")
def _():
    ok("POST", f"/patients/{DEMO_PID}/problems/", {"title": "Gout"})
    return on(first(f"/Condition?patient={demo_patient()}"))


@reach("fhir_encounter_read")
def _():
    encounter()
    return on(first(f"/Encounter?patient={demo_patient()}"))


@reach("fhir_medication_request_read")
def _():
    prescription()
    return on(first(f"/MedicationRequest?patient={demo_patient()}"))


@reach("fhir_observation_read")
def _():
    ok("POST", f"/encounters/{encounter()['encounter']}/vitals/", {"pulse": 72})
    return on(first(f"/Observation?patient={demo_patient()}&category=vital-signs"))


def fhir_document():
    upload_document()
    bundle, _ = fhir("GET", f"/DocumentReference?patient={demo_patient()}&date=ge2000-01-01")
    return bundle["entry"][0]["resource"]


@reach("fhir_document_reference_read")
def _():
    return on(fhir_document()["id"])


@reach("fhir_binary_read")
def _():
    url = fhir_document()["content"][0]["attachment"]["url"]
    return on(url.rstrip("/").rsplit("/", 1)[-1])


def today():
    return str(datetime.date.today())


@reach("fhir_appointment_search")
def _():
    book()
    return dict(query={"patient": demo_patient(), "date": f"ge{today()}"})


@reach("fhir_appointment_read")
def _():
    book()
    return on(first(f"/Appointment?patient={demo_patient()}&date=ge{today()}"))


def garcia_schedule():
    bundle, _ = fhir("GET", "/Schedule")
    return next(e["resource"]["id"] for e in bundle["entry"] if "Garc" in e["resource"]["actor"][0]["display"])


def slot_query():
    """Dr García's office-visit slots on the first day with a free one."""
    day = free_slot()[:10]
    return {"schedule": garcia_schedule(), "service-type": OFFICE_VISIT, "start": [f"ge{day}", f"le{day}"]}


def free_slots():
    return "/Slot?" + urllib.parse.urlencode(slot_query(), doseq=True)


@reach("fhir_slot_search")
def _():
    return dict(query=slot_query())


@reach("fhir_slot_read")
def _():
    return on(first(free_slots()))


@reach("fhir_appointment_create")
def _():
    return dict(body={"resourceType": "Appointment", "status": "booked", "comment": "Knee review",
                      "slot": [{"reference": f"Slot/{first(free_slots())}"}],
                      "participant": [{"actor": {"reference": f"Patient/{demo_patient()}"}}]})


@reach("fhir_observation_create")
def _():
    patient = demo_patient()
    encounter()
    visit_id = first(f"/Encounter?patient={patient}")
    return dict(body={"resourceType": "Observation", "status": "final",
                      "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                      "subject": {"reference": f"Patient/{patient}"},
                      "encounter": {"reference": f"Encounter/{visit_id}"},
                      "effectiveDateTime": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                      "valueQuantity": {"value": 70.0, "unit": "kg", "system": "http://unitsofmeasure.org",
                                        "code": "kg"}})


@reach("fhir_practitioner_read")
def _():
    return on(first("/Practitioner"))


@reach("fhir_communication_create")
def _():
    garcia = next(e["resource"]["id"] for e in fhir("GET", "/Practitioner")[0]["entry"]
                  if "Garc" in json.dumps(e["resource"].get("name")))
    return dict(body={"resourceType": "Communication", "status": "in-progress",
                      "category": [{"text": "Lab Results"}], "subject": {"reference": f"Patient/{demo_patient()}"},
                      "recipient": [{"reference": f"Practitioner/{garcia}"}],
                      "payload": [{"contentString": "Please call about the A1c."}]})


@reach("fhir_document_reference_create")
def _():
    patient = demo_patient()
    encounter()
    return dict(body={"resourceType": "DocumentReference", "status": "current",
                      "type": {"coding": [{"system": "http://loinc.org", "code": "34746-8"}]},
                      "subject": {"reference": f"Patient/{patient}"},
                      "content": [{"attachment": {"contentType": "text/plain; charset=utf-8",
                                                  "data": base64.b64encode(b"Seen for review.").decode()}}],
                      "context": {"encounter": [{"reference": f"Encounter/{first(f'/Encounter?patient={patient}')}"}]}})


def export(finished):
    """A bulk export of the demo groups' patients, kicked off (and waited for when `finished`)."""
    _, headers = ok("GET", FHIR + "/Patient/$export?_type=Patient", headers={"prefer": "respond-async"})
    status_url = headers["content-location"]
    if not status_url.startswith("http"):
        status_url = BASE.removesuffix("/api") + status_url
    export_id = status_url.rstrip("/").rsplit("/", 1)[-1]
    for _ in range(300 if finished else 0):
        status, manifest, _ = call("GET", status_url)
        if status == 200:
            return export_id, manifest
        time.sleep(0.1)
    return export_id, None


@reach("fhir_export_status", "fhir_export_delete")
def _():
    return on(export(False)[0])


@reach("fhir_export_file")
def _():
    export_id, manifest = export(True)
    if manifest is None:
        raise Refused("the export did not finish within 30 s")
    file = manifest["output"][0]["url"].rstrip("/").rsplit("/", 1)[-1]
    return dict(path_parameters={"id": export_id, "file": file})


def operation_id(context):
    return context.operation.definition.raw.get("operationId")


@schemathesis.hook
def before_load_schema(context, raw_schema):
    """Sign-in has no example in the spec (a real password would not belong there); the run's copy
    gets a demo user's, so schemathesis sees a sign-in succeed."""
    login = raw_schema.get("paths", {}).get("/auth/login", {}).get("post")
    if login:
        for media in login["requestBody"]["content"].values():
            media["example"] = {"username": "fdoconnor", "password": "Front-OConnor-6"}


@schemathesis.hook
def before_add_examples(context, examples):
    name = operation_id(context)
    build = BUILDERS.get(name)
    if build is None:
        return
    try:
        examples.append(context.operation.Case(**build()))
    except Exception:  # noqa: BLE001 - a builder that fails is reported; reached.py then names it
        print(f"schemathesis_reach: could not build {name}:\n{traceback.format_exc()}", file=sys.stderr)


@schemathesis.hook
def after_call(context, case, response):
    with SEEN_LOCK, open(SEEN, "a") as seen:
        seen.write(f"{operation_id(context)} {response.status_code}\n")
