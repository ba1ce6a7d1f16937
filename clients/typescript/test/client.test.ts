// The generated TypeScript client (openapi-typescript types + openapi-fetch) against a live
// Custodia server given by CUSTODIA_ADDR and CUSTODIA_TOKEN (an admin key: it creates a
// principal). clients/run-tests.sh builds this with tsc against generate.sh's schema.d.ts and
// runs it with node's test runner.
//
// Every call goes through createClient<paths>(): paths, parameters, bodies and answers are
// checked by tsc against the document. A documented error answer comes back as the typed
// `error` (ErrorBody), next to `response.status`; openapi-fetch does not throw.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";

import createClient from "openapi-fetch";
import type { components, paths } from "custodia-schema";

type ErrorBody = components["schemas"]["ErrorBody"];
type Fields = components["schemas"]["CreateRecordRequest"]["fields"];

const addr = process.env.CUSTODIA_ADDR;
const token = process.env.CUSTODIA_TOKEN;
if (!addr || !token) {
  throw new Error("set CUSTODIA_ADDR and CUSTODIA_TOKEN (an admin key); see clients/README.md");
}

const connect = (key: string) =>
  createClient<paths>({ baseUrl: addr, headers: { Authorization: `Bearer ${key}` } });
const admin = connect(token);

const unique = (prefix: string) => `${prefix}_${randomBytes(6).toString("hex")}`;

const ada: Fields = {
  email: "ada@example.com",
  name: "Ada Lovelace",
  phone: "+44 20 7946 0958",
  shipping_address: "12 St James Square\nLondon",
};
// What reads give back: phone numbers are stored normalised to E.164.
const adaStored: Fields = { ...ada, phone: "+442079460958" };

type Purpose = paths["/v1/subjects/{subject_id}/records/{collection}"]["get"]["parameters"]["query"]["purpose"];

function read(client: ReturnType<typeof connect>, subject: string, purpose: Purpose) {
  return client.GET("/v1/subjects/{subject_id}/records/{collection}", {
    params: { path: { subject_id: subject, collection: "customers" }, query: { purpose } },
  });
}

function expectError(
  result: { error?: ErrorBody; data?: unknown; response: Response },
  status: number,
  code: string,
): ErrorBody {
  assert.equal(result.response.status, status);
  assert.equal(result.data, undefined);
  const body = result.error;
  assert.ok(body, "a typed error body");
  assert.equal(body.error.code, code, body.error.message);
  assert.equal(typeof body.error.message, "string");
  assert.ok(body.error.message.length > 0);
  return body;
}

async function createAda(subject: string): Promise<string> {
  const created = await admin.POST("/v1/subjects/{subject_id}/records/{collection}", {
    params: { path: { subject_id: subject, collection: "customers" } },
    body: { purpose: "order_fulfillment", fields: ada },
  });
  assert.equal(created.response.status, 201, JSON.stringify(created.error));
  assert.ok(created.data);
  return created.data.record_id;
}

test("create a record under a purpose and read it back", async () => {
  const subject = unique("cust");
  const recordId = await createAda(subject);
  assert.match(recordId, /^rec_/);

  const got = await read(admin, subject, "order_fulfillment");
  assert.equal(got.response.status, 200, JSON.stringify(got.error));
  assert.ok(got.data);
  assert.equal(got.data.records.length, 1);
  const [record] = got.data.records;
  assert.ok(record);
  assert.equal(record.record_id, recordId);
  assert.deepEqual(record.fields, adaStored);
  assert.ok(record.created_at && record.updated_at);

  // Another purpose sees only the fields it declares (tax_records: name, shipping_address).
  const tax = await read(admin, subject, "tax_records");
  assert.ok(tax.data, JSON.stringify(tax.error));
  assert.deepEqual(
    tax.data.records.map((r) => r.fields),
    [{ name: ada.name, shipping_address: ada.shipping_address }],
  );

  // A field the purpose does not declare is refused, by name.
  const refused = await admin.POST("/v1/subjects/{subject_id}/records/{collection}", {
    params: { path: { subject_id: subject, collection: "customers" } },
    body: { purpose: "order_fulfillment", fields: { birth_date: "1815-12-10" } },
  });
  const body = expectError(refused, 403, "field_not_in_purpose");
  assert.equal(body.error.field, "birth_date");
});

test("record consent, read the consent state back, and see it enforced", async () => {
  const subject = unique("cust");
  const consents = { params: { path: { subject_id: subject } } };

  // marketing_email is based on consent: nothing without it.
  expectError(await read(admin, subject, "marketing_email"), 403, "consent_required");

  const versions = await admin.GET("/v1/notice/versions");
  assert.ok(versions.data, JSON.stringify(versions.error));
  const notice = versions.data.versions.at(-1)?.version;
  assert.ok(notice && notice.startsWith("sha256-"));

  const given = await admin.POST("/v1/subjects/{subject_id}/consents", {
    ...consents,
    body: {
      purpose: "marketing_email",
      granted: true,
      method: "web_form",
      notice_version: notice,
      evidence: { ip: "203.0.113.7", user_agent: "node:test" },
    },
  });
  assert.equal(given.response.status, 201, JSON.stringify(given.error));
  assert.ok(given.data);
  const firstSeq = given.data.seq;

  let state = await admin.GET("/v1/subjects/{subject_id}/consents", consents);
  assert.ok(state.data, JSON.stringify(state.error));
  assert.equal(state.data.subject_id, subject);
  assert.deepEqual(
    state.data.consents.map(({ purpose, granted, method, notice_version }) => ({ purpose, granted, method, notice_version })),
    [{ purpose: "marketing_email", granted: true, method: "web_form", notice_version: notice }],
  );
  assert.deepEqual(
    state.data.history.map(({ seq, kind, purpose, value }) => ({ seq, kind, purpose, value })),
    [{ seq: firstSeq, kind: "consent", purpose: "marketing_email", value: true }],
  );
  assert.deepEqual(state.data.objections, []);
  assert.equal(state.data.sale_opt_out, false);
  assert.equal(state.data.restricted, false);

  // With consent, a write and a read under the purpose go through.
  const created = await admin.POST("/v1/subjects/{subject_id}/records/{collection}", {
    params: { path: { subject_id: subject, collection: "customers" } },
    body: { purpose: "marketing_email", fields: { email: ada.email! } },
  });
  assert.equal(created.response.status, 201, JSON.stringify(created.error));
  const got = await read(admin, subject, "marketing_email");
  assert.ok(got.data, JSON.stringify(got.error));
  assert.deepEqual(
    got.data.records.map((r) => r.fields),
    [{ email: ada.email }],
  );

  // Withdrawal is one call; the history keeps both entries, and reads stop.
  const withdrawn = await admin.POST("/v1/subjects/{subject_id}/consents", {
    ...consents,
    body: { purpose: "marketing_email", granted: false, method: "email" },
  });
  assert.ok(withdrawn.data, JSON.stringify(withdrawn.error));
  assert.ok(withdrawn.data.seq > firstSeq);
  state = await admin.GET("/v1/subjects/{subject_id}/consents", consents);
  assert.ok(state.data, JSON.stringify(state.error));
  assert.deepEqual(
    state.data.consents.map(({ purpose, granted, method }) => ({ purpose, granted, method })),
    [{ purpose: "marketing_email", granted: false, method: "email" }],
  );
  assert.deepEqual(
    state.data.history.map(({ kind, value }) => [kind, value]),
    [
      ["consent", true],
      ["consent", false],
    ],
  );
  expectError(await read(admin, subject, "marketing_email"), 403, "consent_required");
});

test("a key of a weaker role gets a typed 403", async () => {
  const subject = unique("cust");
  await createAda(subject);

  const issued = await admin.POST("/v1/principals", {
    body: { name: unique("clients-test"), roles: ["support_agent"] },
  });
  assert.equal(issued.response.status, 201, JSON.stringify(issued.error));
  assert.ok(issued.data);
  const { principal_id, api_key } = issued.data;
  const support = connect(api_key);

  // Its own purpose works (so the 403 below is about the purpose, not the key)...
  const ok = await read(support, subject, "customer_support");
  assert.ok(ok.data, JSON.stringify(ok.error));
  assert.equal(ok.data.records[0]?.fields.email, ada.email);

  // ...a purpose its role lacks is a 403 with the one error shape.
  const denied = expectError(await read(support, subject, "order_fulfillment"), 403, "purpose_not_allowed");
  assert.equal(denied.error.field ?? undefined, undefined);
  assert.match(denied.error.message, /order_fulfillment/);

  // So is a capability it lacks.
  expectError(
    await support.POST("/v1/subjects/{subject_id}/consents", {
      params: { path: { subject_id: subject } },
      body: { purpose: "marketing_email", granted: false, method: "api" },
    }),
    403,
    "not_allowed",
  );

  const revoked = await admin.DELETE("/v1/principals/{principal_id}", {
    params: { path: { principal_id } },
  });
  assert.equal(revoked.response.status, 204, JSON.stringify(revoked.error));
  expectError(await read(support, subject, "customer_support"), 401, "unauthenticated");
});
