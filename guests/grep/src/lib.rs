//! grep: keeps the lines of `payload.text` that match the regular expression
//! `payload.pattern` (Rust `regex` syntax, Unicode-aware). A bad pattern is an actor
//! error of kind `invalid_pattern`. It is also the large example component: the regex
//! engine and its Unicode tables make it many times the size of the others.

use wasya_guest::{Guest, Message, Outcome, error, json, output, payload, str_field};

struct Grep;

impl Guest for Grep {
    fn handle(msg: Message) -> Outcome {
        let payload = payload(&msg)?;
        let pattern = str_field(&payload, "pattern")?;
        let text = str_field(&payload, "text")?;
        let regex = regex::Regex::new(pattern)
            .map_err(|problem| error("invalid_pattern", problem.to_string()))?;
        let lines: Vec<&str> = text.lines().filter(|line| regex.is_match(line)).collect();
        Ok(vec![output(&json!({"pattern": pattern, "lines": lines}))])
    }
}

wasya_guest::export!(Grep);
