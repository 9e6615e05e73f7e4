//! drop: returns no output, so the node aborts the route.

use wasya_guest::{Guest, Level, Message, Outcome, log};

struct DropAll;

impl Guest for DropAll {
    fn handle(_msg: Message) -> Outcome {
        log(Level::Debug, "drop handling message: no output");
        Ok(Vec::new())
    }
}

wasya_guest::export!(DropAll);
