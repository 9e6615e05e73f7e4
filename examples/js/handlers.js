// Example handlers, built into wasya actors with `wasya build --js handlers.js --export NAME`.

// A payload transform: uppercases the text and counts its words.
export function shout(payload) {
  console.log(`shouting ${payload.text.length} characters`);
  return { text: payload.text.toUpperCase(), words: payload.text.split(/\s+/).filter(Boolean).length };
}

// A fan-out: one result per word.
export function words(payload) {
  return payload.text.split(/\s+/).filter(Boolean).map((word, index) => ({ word, index }));
}

// A failure: throws, so the envelope goes to error-end with this error.
export function refuse(payload) {
  throw new RangeError(`refused: ${payload.reason ?? "no reason given"}`);
}

// No result: the route ends here and the original goes to happy-end.
export function skip() {
  return null;
}

// State made once (a model would be loaded here), then used per message.
let greetersMade = 0;
class Greeter {
  constructor() {
    greetersMade += 1;
    this.greeting = "Hello";
    this.greeted = 0;
  }
  greet(payload) {
    this.greeted += 1;
    return { greeting: `${this.greeting}, ${payload.name}`, greeted: this.greeted, greeters_made: greetersMade };
  }
}
const greeter = new Greeter();
export function greet(payload) {
  return greeter.greet(payload);
}

// Envelope mode: sends the envelope on to one more actor, named by the payload.
export function addHop(envelope) {
  envelope.route.actors.push(envelope.payload.then);
  envelope.route.current += 1;
  return envelope;
}

// A network step: fetches a URL (the actor must be granted its host with
// `allowed_outbound_hosts`) and answers with the status and the body's length.
export async function fetchStatus(payload) {
  const response = await fetch(payload.url);
  const body = await response.text();
  return { status: response.status, length: body.length, type: response.headers.get("content-type") };
}
