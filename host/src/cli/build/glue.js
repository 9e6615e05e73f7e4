// The glue `wasya build` puts around a JavaScript handler to make it a wasya actor.
//
// Generated at build time: the module, export and mode below are filled in by
// `wasya build`. Payload mode: `handler(payload)` returns a value (one result), an
// array (fan-out) or null/undefined (no result: the route is aborted). Envelope mode:
// `handler(envelope)` returns an envelope or an array of them, and advances
// `route.current` itself. A handler may be `async` (to `await fetch(...)`): the
// export is async, so componentize-js runs the event loop until its promise settles.
// A thrown error goes to error-end with its name, message and stack (written to
// stderr, which the node attaches).
import * as handlerModule from "{{MODULE}}";

const EXPORT = "{{EXPORT}}";
const MODE = "{{MODE}}";
const handler = handlerModule[EXPORT];
if (typeof handler !== "function") {
  throw new Error(`{{MODULE}} exports no function named ${EXPORT}`);
}

function route(value) {
  return {
    actors: (value.actors || []).map(String),
    current: Number(value.current || 0),
    metadata: value.metadata === undefined || value.metadata === null ? undefined : JSON.stringify(value.metadata),
  };
}

function headers(value) {
  if (value === undefined || value === null) return undefined;
  return Object.entries(value).map(([name, header]) => ({ name, value: String(header) }));
}

function envelope(msg) {
  const result = {
    id: msg.id,
    route: { actors: msg.route.actors, current: msg.route.current },
    headers: Object.fromEntries(msg.headers.map((header) => [header.name, header.value])),
    payload: JSON.parse(msg.payload),
  };
  if (msg.route.metadata !== undefined) result.route.metadata = JSON.parse(msg.route.metadata);
  if (msg.parentId !== undefined) result.parent_id = msg.parentId;
  return result;
}

async function outputs(msg) {
  const input = MODE === "envelope" ? envelope(msg) : JSON.parse(msg.payload);
  const result = await handler(input);
  if (result === null || result === undefined) return [];
  const results = Array.isArray(result) ? result : [result];
  if (MODE === "envelope") {
    return results.map((item) => ({
      payload: JSON.stringify(item.payload === undefined ? null : item.payload),
      route: item.route ? route(item.route) : undefined,
      headers: headers(item.headers),
    }));
  }
  return results.map((value) => ({ payload: JSON.stringify(value === undefined ? null : value) }));
}

export async function handle(msg) {
  try {
    return await outputs(msg);
  } catch (error) {
    const name = (error && error.name) || "Error";
    const message = error && error.message !== undefined ? error.message : String(error);
    console.error(`${name}: ${message}\n${(error && error.stack) || ""}`);
    throw { payload: { kind: name, message } };
  }
}
