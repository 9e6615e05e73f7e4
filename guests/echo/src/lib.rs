//! echo: returns the payload unchanged.

use wasya_guest::{Guest, Level, Message, Outcome, log, output_text};

struct Echo;

impl Guest for Echo {
    fn handle(msg: Message) -> Outcome {
        log(Level::Debug, "echo handling message");
        Ok(vec![output_text(msg.payload)])
    }
}

wasya_guest::export!(Echo);
