//! hog: allocates memory without bound, so the node's memory limit has to stop it.

use std::hint::black_box;

use wasya_guest::{Guest, Level, Message, Outcome, log};

const CHUNK: usize = 1 << 20;

struct Hog;

impl Guest for Hog {
    fn handle(_msg: Message) -> Outcome {
        log(
            Level::Info,
            "hog handling message: allocating without bound",
        );
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        loop {
            // Filled with data and passed through `black_box`, so neither the writes nor
            // the allocations can be optimised away.
            chunks.push(black_box(vec![0xa5; CHUNK]));
            black_box(&chunks);
        }
    }
}

wasya_guest::export!(Hog);
