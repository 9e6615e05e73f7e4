//! trap: panics on every message, which the node sees as a trap.

use wasya_guest::{Guest, Level, Message, Outcome, log};

struct Trap;

impl Guest for Trap {
    fn handle(_msg: Message) -> Outcome {
        log(Level::Info, "trap handling message: about to panic");
        panic!("trap actor panics on purpose");
    }
}

wasya_guest::export!(Trap);
