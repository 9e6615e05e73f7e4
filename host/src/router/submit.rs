//! Taking new envelopes in: a submission (the node built the envelope) or raw bytes
//! published onto a queue as an outside producer would. Both are refused once the
//! node is stopping, and when they are larger than what the node can carry; a
//! submission is also held to the depth limit, since its failure must be wrappable.

use super::Router;
use crate::envelope::limits::check_depth;
use crate::envelope::{Envelope, EnvelopeError};
use crate::records::HAPPY_END;
use crate::transport::{Message, TransportError};
use bytes::Bytes;

/// Why an envelope was not taken in.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The node is stopping.
    #[error("the node is stopping and takes no new envelopes")]
    Stopping,
    /// The envelope is too large, or (a submission) nests too deep.
    #[error("the envelope is refused")]
    Refused(#[source] EnvelopeError),
    /// The transport could not queue the envelope.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

impl Router {
    /// Puts a new envelope on the queue of its first actor.
    pub async fn submit(&self, envelope: &Envelope) -> Result<(), SubmitError> {
        if self.stopping.is_cancelled() {
            return Err(SubmitError::Stopping);
        }
        check_depth("payload", &envelope.payload).map_err(SubmitError::Refused)?;
        if let Some(metadata) = &envelope.route.metadata {
            check_depth("route.metadata", metadata).map_err(SubmitError::Refused)?;
        }
        // A submission is a root: whatever a caller wrote, the node's fan-out
        // bookkeeping is not taken from it.
        let body = Bytes::from(envelope.to_bytes_without(crate::branch::is_bookkeeping));
        self.settings
            .size
            .check(body.len())
            .map_err(SubmitError::Refused)?;
        let actor = envelope.route.current_actor().unwrap_or(HAPPY_END);
        self.outcomes
            .submitted_as(
                &envelope.id,
                Some(crate::outcomes::Submission::of(envelope)),
            )
            .await;
        Ok(self
            .transport
            .send(self.queue_of(actor), Message::from(body))
            .await?)
    }

    /// Puts raw bytes on an actor's queue, as an outside producer would.
    pub async fn publish_raw(&self, actor: &str, body: Bytes) -> Result<(), SubmitError> {
        if self.stopping.is_cancelled() {
            return Err(SubmitError::Stopping);
        }
        self.settings
            .size
            .check(body.len())
            .map_err(SubmitError::Refused)?;
        Ok(self.transport.send(actor, Message::from(body)).await?)
    }
}
