//! tally: totals and a per-tag breakdown of `payload.items` (`{id, price, qty, tags}`);
//! the JSON-heavy handler of the language benchmark.

use wasya_guest::{Guest, Message, Outcome, Value, error, json, output, payload};

struct Tally;

impl Guest for Tally {
    fn handle(msg: Message) -> Outcome {
        let payload = payload(&msg)?;
        let items = payload
            .get("items")
            .and_then(Value::as_array)
            .ok_or_else(|| error("bad-input", "payload.items is not a list"))?;
        let mut total = 0.0;
        let mut by_tag = wasya_guest::serde_json::Map::new();
        let mut lines = Vec::with_capacity(items.len());
        for item in items {
            let number = |name: &str| item.get(name).and_then(Value::as_f64).unwrap_or(0.0);
            let amount = number("price") * number("qty");
            total += amount;
            let tags = item
                .get("tags")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            for tag in tags.iter().filter_map(Value::as_str) {
                let sum = by_tag.entry(tag).or_insert(json!(0.0));
                *sum = json!(sum.as_f64().unwrap_or(0.0) + amount);
            }
            lines.push(json!({"id": item.get("id"), "amount": amount, "tags": tags.len()}));
        }
        Ok(vec![output(
            &json!({"total": total, "by_tag": by_tag, "lines": lines}),
        )])
    }
}

wasya_guest::export!(Tally);
