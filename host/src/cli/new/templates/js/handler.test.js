// Tests of the handler, run with `node --test`: no node of wasya needed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { handler } from "./handler.js";

test("uppercases and counts", () => {
  assert.deepEqual(handler({ text: "hi" }), { text: "HI", length: 2 });
});

test("an empty payload is empty text", () => {
  assert.deepEqual(handler({}), { text: "", length: 0 });
});
