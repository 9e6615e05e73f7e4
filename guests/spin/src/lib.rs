//! spin: loops forever, so the node's timeout has to stop it.

use std::hint::black_box;

use wasya_guest::{Guest, Level, Message, Outcome, log};

struct Spin;

impl Guest for Spin {
    fn handle(_msg: Message) -> Outcome {
        log(Level::Info, "spin handling message: looping forever");
        let mut turns = 0u64;
        loop {
            // `black_box` keeps the optimiser from seeing that the loop does nothing.
            turns = black_box(turns.wrapping_add(1));
        }
    }
}

wasya_guest::export!(Spin);
