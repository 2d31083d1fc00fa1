/**
 * The whole transcription workflow through a TypeScript client typed from mmt-sidecar's OpenAPI spec:
 * the same twelve steps as clients/workflow_test.py, in a second ecosystem.
 *
 * Run by scripts/client-workflow.sh, which generates generated/schema.d.ts from the live spec with
 * openapi-typescript, type-checks this file against it with tsc and runs the output with Node:
 *
 *     node generated/dist/workflow.js http://127.0.0.1:PORT/api
 *
 * Every request goes through openapi-fetch's `createClient<paths>`, so paths, parameters, bodies and
 * responses are all typed by the spec alone: no hand-written request or response types, no casts.
 * Prints each step and ends with `client workflow (typescript): N passed, M failed`; exits 1 when
 * anything failed.
 */

import { randomUUID } from "node:crypto";
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./generated/schema.js";

const USERNAME = "drgarcia";
const PASSWORD = "Physician-Garcia-2";
const SEARCH = "Muñoz";
const TIMEOUT_MS = 30_000;

/** Quoted like Python's repr() of a plain string, so both workflows print the same lines. */
const q = (s: string): string => `'${s}'`;

// Names for the generated types. openapi-fetch does not reject unknown keys in request bodies or
// query parameters (openapi-ts/openapi-typescript#2329), so each literal also `satisfies` its
// generated type, which does: a misspelt field fails tsc instead of reaching the server.
type Schema<Name extends keyof components["schemas"]> = components["schemas"][Name];
type Query<Path extends keyof paths> = paths[Path]["get"] extends { parameters: { query?: infer Q } } ? Q : never;
type Problem = Schema<"Problem">;

class CheckFailed extends Error {}

function expect(cond: boolean, message: string): asserts cond {
    if (!cond) {
        throw new CheckFailed(message);
    }
}

/** A value an earlier step stored; every later step depends on it. */
function need<T>(value: T | undefined, name: string): T {
    if (value === undefined) {
        throw new CheckFailed(`${name} was not set by an earlier step`);
    }
    return value;
}

function describe(error: Problem | undefined): string {
    if (error === undefined) {
        return "no body";
    }
    // openapi-fetch hands over the raw text when an error body is not JSON.
    if (typeof error.title !== "string") {
        return JSON.stringify(error).slice(0, 500);
    }
    return `${error.status} ${error.title}: ${error.detail} (request_id ${error.request_id})`;
}

/** The parsed body of a response that must have `status`; otherwise a readable failure. */
function ok<D>(
    result: { data?: D; error?: Problem; response: Response },
    status: number,
    what: string,
): D {
    const { data, error, response } = result;
    if (response.status !== status || data === undefined) {
        throw new CheckFailed(`${what}: expected HTTP ${status}, got ${response.status}: ${describe(error)}`);
    }
    return data;
}

function etagOf(response: Response): string {
    const tag = response.headers.get("etag");
    expect(tag !== null, "response has no ETag header");
    return tag;
}

function clientFor(baseUrl: string, token?: string): Client<paths> {
    return createClient<paths>({
        baseUrl,
        headers: token === undefined ? {} : { Authorization: `Bearer ${token}` },
        fetch: (request) => fetch(request, { signal: AbortSignal.timeout(TIMEOUT_MS) }),
    });
}

async function main(baseUrl: string): Promise<number> {
    let passed = 0;
    let failed = 0;
    const anon = clientFor(baseUrl);
    const state: {
        client?: Client<paths>;
        facilityId?: number;
        pid?: number;
        encounter?: number;
        tid?: string;
        etag?: string;
        createdVersion?: number;
        text?: string;
    } = {};

    async function step(name: string, fn: () => Promise<string>): Promise<boolean> {
        let detail: string;
        try {
            detail = await fn();
        } catch (e) {
            failed += 1;
            if (e instanceof CheckFailed) {
                console.log(`FAIL  ${name}: ${e.message}`);
            } else {
                // A body that is not JSON, a connection error (fetch puts the reason in `cause`)...
                const trace = e instanceof Error ? (e.stack ?? e.message) : String(e);
                const cause = e instanceof Error && e.cause !== undefined ? `\ncaused by: ${String(e.cause)}` : "";
                console.log(`FAIL  ${name}: exception\n${trace}${cause}`);
            }
            return false;
        }
        passed += 1;
        console.log(`ok    ${name}: ${detail}`);
        return true;
    }

    const client = (): Client<paths> => need(state.client, "the signed-in client");
    const tid = (): string => need(state.tid, "the transcription id");

    async function login(): Promise<string> {
        const token = ok(
            await anon.POST("/auth/login", {
                body: { username: USERNAME, password: PASSWORD } satisfies Schema<"LoginRequest">,
            }),
            200,
            "POST /auth/login",
        );
        expect(token.access_token !== "", "empty access token");
        expect(token.user.username === USERNAME, `signed in as ${q(token.user.username)}`);
        state.client = clientFor(baseUrl, token.access_token);
        return `signed in as ${token.user.username} (token_type ${token.token_type})`;
    }

    async function facilities(): Promise<string> {
        const items = ok(await client().GET("/openemr/facilities"), 200, "GET /openemr/facilities");
        const first = items[0];
        expect(first !== undefined, "no facilities");
        state.facilityId = first.id;
        return `${items.length} facilities, first ${q(first.name)} (id ${first.id})`;
    }

    async function searchPatient(): Promise<string> {
        const page = ok(
            await client().GET("/patients", {
                params: { query: { search: SEARCH, page_size: 5 } satisfies Query<"/patients"> },
            }),
            200,
            `GET /patients?search=${SEARCH}`,
        );
        const p = page.items[0];
        expect(p !== undefined, `no patient matches ${q(SEARCH)}`);
        expect(
            `${p.first_name} ${p.last_name}`.toLowerCase().includes(SEARCH.toLowerCase()),
            `first hit is ${q(p.last_name)}`,
        );
        state.pid = p.pid;
        return `${page.total} match(es); using pid ${p.pid} ${p.first_name} ${p.last_name}`;
    }

    async function createEncounter(): Promise<string> {
        const pid = need(state.pid, "pid");
        const enc = ok(
            await client().POST("/encounters", {
                body: {
                    pid,
                    reason: "Dictated visit (client workflow test)",
                    facility_id: need(state.facilityId, "facility id"),
                } satisfies Schema<"EncounterInput">,
            }),
            201,
            "POST /encounters",
        );
        expect(enc.pid === pid, `encounter is for pid ${enc.pid}`);
        state.encounter = enc.encounter;
        return `encounter ${enc.encounter} for pid ${enc.pid}`;
    }

    function createBody(): Schema<"TranscriptionCreate"> {
        return {
            id: tid(),
            pid: need(state.pid, "pid"),
            encounter: need(state.encounter, "encounter"),
            title: "Follow-up visit",
            segments: [
                {
                    start_ms: 0,
                    end_ms: 4200,
                    speaker_label: "Dr. Garcia",
                    speaker_role: "clinician",
                    text: "Patient returns for follow-up of hypertension.",
                    confidence: 0.94,
                },
                {
                    start_ms: 4200,
                    end_ms: 7800,
                    speaker_label: "Patient",
                    speaker_role: "patient",
                    text: "I have been taking the medication every morning.",
                    confidence: 0.88,
                },
            ],
        };
    }

    async function createTranscription(): Promise<string> {
        state.tid = randomUUID();
        const result = await client().POST("/transcriptions", { body: createBody() });
        const t = ok(result, 201, "POST /transcriptions");
        expect(t.id === state.tid, `id ${t.id} is not the client's ${state.tid}`);
        expect(t.status === "draft", `status ${t.status}`);
        expect(t.encounter === state.encounter, `encounter ${t.encounter}`);
        const tag = etagOf(result.response);
        expect(tag.replace(/^"|"$/g, "") === String(t.version), `ETag ${tag} does not match version ${t.version}`);
        state.etag = tag;
        state.createdVersion = t.version;
        return `201 ${t.id} status ${t.status} version ${t.version} ETag ${tag}`;
    }

    async function createAgain(): Promise<string> {
        const t = ok(
            await client().POST("/transcriptions", { body: createBody() }),
            200,
            "POST /transcriptions (same id again)",
        );
        expect(t.id === state.tid, `returned id ${t.id}`);
        expect(t.version === state.createdVersion, `version changed to ${t.version}`);
        return `200, the same transcription ${t.id} (version ${t.version})`;
    }

    async function patchText(): Promise<string> {
        const text =
            "Hypertension follow-up. Adherent to lisinopril 10 mg daily. " +
            "BP 128/82. Continue current regimen; recheck in 3 months.";
        const etag = need(state.etag, "ETag");
        const createdVersion = need(state.createdVersion, "created version");
        const result = await client().PATCH("/transcriptions/{id}", {
            params: { path: { id: tid() }, header: { "If-Match": etag } },
            body: { text, reason: "clinician edit" } satisfies Schema<"TranscriptionEdit">,
        });
        const t = ok(result, 200, `PATCH /transcriptions/${tid()} (If-Match ${etag})`);
        expect(t.text === text, "text was not changed");
        expect(t.version > createdVersion, `version did not advance (${t.version})`);
        state.etag = etagOf(result.response);
        state.text = text;
        return `text edited, version ${t.version}, ETag ${state.etag}`;
    }

    async function submit(): Promise<string> {
        const result = await client().POST("/transcriptions/{id}/submit", {
            params: { path: { id: tid() }, header: { "If-Match": need(state.etag, "ETag") } },
        });
        const t = ok(result, 200, "POST /transcriptions/{id}/submit");
        expect(t.status === "pending_review", `status ${t.status}`);
        state.etag = etagOf(result.response);
        return `status ${t.status}, allowed [${t.allowed_actions.map(q).join(", ")}]`;
    }

    async function approve(): Promise<string> {
        const t = ok(
            await client().POST("/transcriptions/{id}/approve", {
                params: { path: { id: tid() }, header: { "If-Match": need(state.etag, "ETag") } },
            }),
            200,
            "POST /transcriptions/{id}/approve",
        );
        expect(t.status === "approved", `status ${t.status}`);
        return `status ${t.status}, approved_by ${t.approved_by}`;
    }

    async function fileNote(): Promise<string> {
        const t = ok(
            await client().POST("/transcriptions/{id}/integrate_with_openemr", { params: { path: { id: tid() } } }),
            200,
            "POST /transcriptions/{id}/integrate_with_openemr",
        );
        expect(t.status === "filed", `status ${t.status}`);
        return `status ${t.status}`;
    }

    async function readBack(): Promise<string> {
        const t = ok(
            await client().GET("/transcriptions/{id}", { params: { path: { id: tid() } } }),
            200,
            "GET /transcriptions/{id}",
        );
        expect(t.status === "filed", `status ${t.status}`);
        const noteId = t.filed?.note_id;
        expect(Number.isInteger(noteId), `no filed note id: ${JSON.stringify(t.filed)}`);
        expect(t.text === state.text, "text differs from the edit");
        expect(t.segments !== undefined && t.segments !== null && t.segments.length === 2, `segments ${JSON.stringify(t.segments)}`);
        return `filed as form_clinical_notes id ${noteId} (form_id ${t.filed?.form_id}), 2 segments`;
    }

    async function revisions(): Promise<string> {
        const revs = ok(
            await client().GET("/transcriptions/{id}/revisions", { params: { path: { id: tid() } } }),
            200,
            "GET /transcriptions/{id}/revisions",
        );
        expect(revs.length >= 2, `${revs.length} revision(s)`);
        expect(revs.at(-1)?.text === state.text, "the last revision is not the edited text");
        return `${revs.length} revisions: ` + revs.map((r) => `#${r.revision_no} ${q(r.reason)}`).join(", ");
    }

    const steps: [string, () => Promise<string>][] = [
        ["log in as drgarcia", login],
        ["list facilities", facilities],
        [`search patients for ${q(SEARCH)}`, searchPatient],
        ["create an encounter", createEncounter],
        ["create a transcription with segments", createTranscription],
        ["re-send the same create", createAgain],
        ["patch the text with If-Match", patchText],
        ["submit", submit],
        ["approve", approve],
        ["file into OpenEMR (integrate_with_openemr)", fileNote],
        ["read it back", readBack],
        ["read revisions", revisions],
    ];
    for (const [i, [name, fn]] of steps.entries()) {
        if (!(await step(name, fn))) {
            // Every later step depends on this one.
            for (const [later] of steps.slice(i + 1)) {
                console.log(`skip  ${later}`);
                failed += 1;
            }
            break;
        }
    }
    console.log(`client workflow (typescript): ${passed} passed, ${failed} failed`);
    return failed === 0 ? 0 : 1;
}

const args = process.argv.slice(2);
if (args.length !== 1 || args[0] === undefined) {
    console.error("usage: node workflow.js BASE_URL (e.g. http://127.0.0.1:8001/api)");
    process.exit(2);
}
process.exitCode = await main(args[0].replace(/\/+$/, ""));
