// The handlers the language benchmark runs, built into wasm.

// Small: double a number.
export function double(payload) {
  return { n: payload.n * 2 };
}

// JSON-heavy: totals and a per-tag breakdown of a list of order lines.
export function tally(payload) {
  let total = 0;
  const byTag = {};
  const lines = [];
  for (const item of payload.items) {
    const amount = item.price * item.qty;
    total += amount;
    for (const tag of item.tags) byTag[tag] = (byTag[tag] ?? 0) + amount;
    lines.push({ id: item.id, amount, tags: item.tags.length });
  }
  return { total, by_tag: byTag, lines };
}
