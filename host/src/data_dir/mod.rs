//! Everything a single node keeps in its data directory, in one place.
//!
//! The data directory is the embedded store: with it a node on one machine keeps
//! what a broker and a pool's PostgreSQL store would keep for it elsewhere.
//!
//! - `queue.redb` ([`journal`]): the embedded queue's messages and their deliveries,
//!   and the outcomes and progress of the submissions taken in, written by one
//!   group-commit writer. The embedded transport writes its ops there itself;
//!   the outcome record writes through [`outcome_writes::OutcomeJournal`].
//! - `deployments/` ([`deployments`]): the record of deployed actors and their
//!   components, one file each, written atomically.
//! - `compiled/`: the compile cache, which belongs to the wasm engine
//!   ([`crate::runtime::wasm::cache`]) and is only placed here.
//!
//! A pool of nodes keeps deployments and outcomes in PostgreSQL instead
//! ([`crate::store::postgres`]); the embedded queue's part has no pool counterpart,
//! since a broker keeps queues there.

pub mod deployments;
pub mod journal;
pub mod outcome_writes;
