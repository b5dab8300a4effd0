// Clients of the hosted API send null, "null" or "" for fields they leave unset (reported: seed "null" and
// webhook "null" got a 400). Every optional field of the request body must treat all three as "not sent".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bodyFieldNames, CONTROLNET_ENDPOINT, parseRequest } from '../../src/request/schema.ts';
import { isUnset } from '../../src/request/unset.ts';

const base = { key: 'k', controlnet_model: 'canny', control_image: 'aGVsbG8=' };
const REQUIRED = new Set(['key', 'controlnet_model']);
const UNSET = [null, 'null', '', 'NULL', ' null '];

test('the reported cases: seed "null" and webhook "null" are unset, not a 400', () => {
  const r = parseRequest({ ...base, seed: 'null', webhook: 'null' });
  assert.equal(r.seed, undefined);
  assert.equal(r.webhook, undefined);
});

test('every optional field accepts null, "null" and "" as unset (the same result as not sending it)', () => {
  const omitted = parseRequest(base);
  const fields = bodyFieldNames(CONTROLNET_ENDPOINT).filter((f) => !REQUIRED.has(f));
  assert.ok(fields.length > 30, `the schema's optional fields (${fields.length})`);
  for (const field of fields) {
    for (const v of UNSET) {
      // control_image unset needs init_image to stay a valid request
      const body = field === 'control_image' ? { ...base, init_image: 'aGVsbG8=', [field]: v } : { ...base, [field]: v };
      const r = parseRequest(body);
      const expected = field === 'control_image' ? parseRequest({ ...base, init_image: 'aGVsbG8=', control_image: undefined }) : omitted;
      assert.deepEqual((r as unknown as Record<string, unknown>)[field], (expected as unknown as Record<string, unknown>)[field], `${field}: ${JSON.stringify(v)}`);
    }
  }
});

test('the required field still says it is required when sent as "null"', () => {
  assert.throws(() => parseRequest({ key: 'k', controlnet_model: 'null', control_image: 'aGVsbG8=' }), /controlnet_model is required/);
});

test('isUnset: only the three spellings (any case, blanks) are unset; "0", "no", "nullable" are values', () => {
  for (const v of [null, undefined, '', '  ', 'null', 'Null', ' NULL ']) assert.equal(isUnset(v), true, JSON.stringify(v));
  for (const v of [0, '0', 'no', false, 'nullable', 'none', [], {}]) assert.equal(isUnset(v), false, JSON.stringify(v));
});
