// The handler of the actor {{name}}.
//
// It takes the envelope's payload and returns the next one. Return an array to fan out
// (one envelope per item), null to end the route, or throw to send the envelope to
// error-end with the error's name, message and stack.
export function handler(payload) {
  const text = String(payload.text ?? "");
  return { text: text.toUpperCase(), length: text.length };
}
