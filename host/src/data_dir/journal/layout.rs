//! The tables of the store, how their values are encoded, and opening the file.
//!
//! Keys are what records are found by (a message's sequence number, a submission's
//! id); values are small byte layouts of our own, versioned by [`FORMAT`] in the
//! `meta` table. A store whose format is newer than [`FORMAT`] is refused, so an
//! older node never misreads what a newer one wrote.

use super::JournalError;
use crate::branch::Lineage;
use bytes::Bytes;
use redb::{
    Database, DatabaseError, ReadableDatabase, ReadableTable, StorageError, TableDefinition,
};
use std::path::Path;
use std::sync::Arc;

/// The layout version this node writes and reads (2: a message may carry its fan-out
/// lineage beside the body; a store of format 1 is read, and marked 2 at open).
pub const FORMAT: u64 = 2;

pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Message sequence number → [`encode_message`].
pub(super) const MESSAGES: TableDefinition<u64, &[u8]> = TableDefinition::new("messages");
/// Message sequence number → (redeliveries before, held by a consumer now).
pub(super) const DELIVERIES: TableDefinition<u64, (u32, bool)> = TableDefinition::new("deliveries");
/// Submission id → the order it was known in.
pub(super) const SUBMISSIONS: TableDefinition<&str, u64> = TableDefinition::new("submissions");
/// (submission id, branch path) → [`encode_end`].
pub(super) const ENDED: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("ended");
/// (submission id, event number) → the event as JSON.
pub(super) const EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("events");

const FORMAT_KEY: &str = "format";

/// Opens or creates the store at `path`, checking every page of a store that exists
/// and its format; creates the tables of a new one.
pub(super) fn open(path: &Path) -> Result<Database, JournalError> {
    let existed = path.metadata().is_ok_and(|meta| meta.len() > 0);
    let db = redb::Builder::new()
        // Every page's checksum is verified at open, so a damaged file is refused
        // instead of being trusted.
        .set_check_integrity_on_open(existed)
        .set_cache_size(CACHE_BYTES)
        .create(path)
        .map_err(|error| classify(path, error))?;
    let write = db.begin_write().map_err(|error| corrupt(path, error))?;
    {
        let mut meta = write
            .open_table(META)
            .map_err(|error| corrupt(path, error))?;
        let found = meta
            .get(FORMAT_KEY)
            .map_err(|error| corrupt(path, error))?
            .map(|value| value.value());
        match found {
            Some(found) if found > FORMAT => {
                return Err(JournalError::NewerFormat {
                    path: path.to_owned(),
                    found,
                    supported: FORMAT,
                });
            }
            // An older format is read as it is; what this node writes from now on
            // is in its own, so an older node must refuse the store.
            Some(found) if found < FORMAT => {
                meta.insert(FORMAT_KEY, FORMAT)
                    .map_err(|error| corrupt(path, error))?;
            }
            Some(_) => {}
            None if existed && has_tables(&db, path)? => {
                return Err(JournalError::Corrupt {
                    path: path.to_owned(),
                    detail: "it holds tables but no format version".into(),
                });
            }
            None => {
                meta.insert(FORMAT_KEY, FORMAT)
                    .map_err(|error| corrupt(path, error))?;
            }
        }
        write
            .open_table(MESSAGES)
            .map_err(|error| corrupt(path, error))?;
        write
            .open_table(DELIVERIES)
            .map_err(|error| corrupt(path, error))?;
        write
            .open_table(SUBMISSIONS)
            .map_err(|error| corrupt(path, error))?;
        write
            .open_table(ENDED)
            .map_err(|error| corrupt(path, error))?;
        write
            .open_table(EVENTS)
            .map_err(|error| corrupt(path, error))?;
    }
    write.commit().map_err(|error| corrupt(path, error))?;
    Ok(db)
}

/// The engine's page cache: the store holds bounded queues and outcomes.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

fn has_tables(db: &Database, path: &Path) -> Result<bool, JournalError> {
    let read = db.begin_read().map_err(|error| corrupt(path, error))?;
    let tables = read.list_tables().map_err(|error| corrupt(path, error))?;
    Ok(tables.count() > 0)
}

fn classify(path: &Path, error: DatabaseError) -> JournalError {
    match error {
        DatabaseError::DatabaseAlreadyOpen => JournalError::InUse {
            path: path.to_owned(),
        },
        DatabaseError::Storage(StorageError::Io(io))
            if io.kind() != std::io::ErrorKind::InvalidData
                && io.kind() != std::io::ErrorKind::UnexpectedEof =>
        {
            JournalError::Open {
                path: path.to_owned(),
                source: crate::error_chain::cause(io),
            }
        }
        other => corrupt(path, other),
    }
}

pub(super) fn corrupt(path: &Path, error: impl std::fmt::Display) -> JournalError {
    JournalError::Corrupt {
        path: path.to_owned(),
        detail: error.to_string(),
    }
}

/// `redeliveries` (u32 LE), the queue's name (u16 LE length, bytes), the body.
///
/// The redeliveries (u32 LE), the queue name's length (u16 LE, its top bit set when a
/// lineage follows the name), the name, then for a fan-out child its lineage (root
/// and path, each a u16 LE length and the text), then the body. Format 1 wrote no
/// lineage and never set the bit (queue names are far shorter than 32 KiB).
pub(super) fn encode_message(
    queue: &str,
    redeliveries: u32,
    lineage: Option<&Lineage>,
    body: &[u8],
) -> Vec<u8> {
    let name = queue.as_bytes();
    let mut out = Vec::with_capacity(6 + name.len() + body.len() + 64);
    out.extend_from_slice(&redeliveries.to_le_bytes());
    let flag = if lineage.is_some() { LINEAGE_FLAG } else { 0 };
    out.extend_from_slice(&((name.len() as u16 & !LINEAGE_FLAG) | flag).to_le_bytes());
    out.extend_from_slice(name);
    if let Some(lineage) = lineage {
        for text in [&lineage.root, &lineage.path] {
            // Both are bounded by the envelope's id and fan-out depth; cut to fit.
            let text = &text.as_bytes()[..text.len().min(usize::from(u16::MAX))];
            out.extend_from_slice(&(text.len() as u16).to_le_bytes());
            out.extend_from_slice(text);
        }
    }
    out.extend_from_slice(body);
    out
}

/// The top bit of the name length: a lineage follows the name.
const LINEAGE_FLAG: u16 = 0x8000;

/// A message as the store keeps it.
pub(super) struct DecodedMessage {
    pub queue: Arc<str>,
    pub redeliveries: u32,
    pub lineage: Option<Lineage>,
    pub body: Bytes,
}

/// Reads what [`encode_message`] wrote (or format 1 did).
pub(super) fn decode_message(bytes: &[u8]) -> Option<DecodedMessage> {
    let redeliveries = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?);
    let word = u16::from_le_bytes(bytes.get(4..6)?.try_into().ok()?);
    let length = usize::from(word & !LINEAGE_FLAG);
    let name = std::str::from_utf8(bytes.get(6..6 + length)?).ok()?;
    let mut at = 6 + length;
    let mut text = || -> Option<String> {
        let length = usize::from(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?));
        let text = std::str::from_utf8(bytes.get(at + 2..at + 2 + length)?).ok()?;
        at += 2 + length;
        Some(text.to_owned())
    };
    let lineage = if word & LINEAGE_FLAG != 0 {
        Some(Lineage {
            root: text()?,
            path: text()?,
        })
    } else {
        None
    };
    let body = Bytes::copy_from_slice(bytes.get(at..)?);
    Some(DecodedMessage {
        queue: Arc::from(name),
        redeliveries,
        lineage,
        body,
    })
}

/// The end (0 happy, 1 error), the size it was counted at (u64 LE), the envelope.
pub(super) fn encode_end(end: crate::records::End, size: u64, envelope: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + envelope.len());
    out.push(match end {
        crate::records::End::Happy => 0,
        crate::records::End::Error => 1,
    });
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(envelope);
    out
}

pub(super) fn decode_end(bytes: &[u8]) -> Option<(crate::records::End, u64, &[u8])> {
    let end = match bytes.first()? {
        0 => crate::records::End::Happy,
        1 => crate::records::End::Error,
        _ => return None,
    };
    let size = u64::from_le_bytes(bytes.get(1..9)?.try_into().ok()?);
    Some((end, size, bytes.get(9..)?))
}
