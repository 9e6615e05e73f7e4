//! The framing of Asya's runtime protocol: a 4-byte big-endian length, then that many
//! bytes of JSON, in both directions.
//!
//! The length is checked against the frame limit *before* anything is allocated, and
//! the body is read in bounded steps, so a broken runtime that announces 2 GiB costs
//! nothing. A connection that ends before the first byte of the answer is told apart
//! from one that ends in the middle of a frame: the first is a runtime that died (try
//! again), the second a protocol error.

use crate::failure::Kind;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Why a frame could not be exchanged.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The runtime closed or reset the connection before answering anything.
    #[error("the runtime closed the connection without answering")]
    Closed,
    /// The frame's header announces more bytes than the frame limit.
    #[error("the frame announces {announced} bytes, over the frame limit of {limit}")]
    TooLarge {
        /// The length the header announces, in bytes.
        announced: u64,
        /// The frame limit, in bytes.
        limit: usize,
    },
    /// The connection ended in the middle of a frame.
    #[error("the frame was cut short: {got} of {expected} bytes")]
    Truncated {
        /// The bytes that arrived.
        got: usize,
        /// The bytes the header (or the 4-byte header itself) called for.
        expected: usize,
    },
    /// The frame to send is longer than a 4-byte length can say; holds its size in bytes.
    #[error("the frame is too large to send ({0} bytes)")]
    RequestTooLarge(usize),
    /// Reading or writing the socket failed.
    #[error("i/o error")]
    Io(#[source] std::io::Error),
}

impl FrameError {
    /// What it means for `details.type`.
    pub fn kind(&self) -> Kind {
        match self {
            FrameError::Closed => Kind::RuntimeClosed,
            FrameError::TooLarge { .. } => Kind::FrameTooLarge,
            FrameError::Truncated { .. } => Kind::TruncatedFrame,
            FrameError::RequestTooLarge(_) => Kind::RequestTooLarge,
            FrameError::Io(_) => Kind::IoError,
        }
    }
}

fn is_gone(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        error.kind(),
        UnexpectedEof | ConnectionReset | BrokenPipe | ConnectionAborted
    )
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    body: &[u8],
) -> Result<(), FrameError> {
    let length = u32::try_from(body.len()).map_err(|_| FrameError::RequestTooLarge(body.len()))?;
    let sent = async {
        writer.write_all(&length.to_be_bytes()).await?;
        writer.write_all(body).await?;
        writer.flush().await
    };
    sent.await.map_err(|error| {
        if is_gone(&error) {
            FrameError::Closed
        } else {
            FrameError::Io(error)
        }
    })
}

/// Reads one frame of at most `limit` bytes.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    limit: usize,
) -> Result<Vec<u8>, FrameError> {
    let mut header = [0u8; 4];
    let mut filled = 0;
    while filled < header.len() {
        match reader.read(&mut header[filled..]).await {
            Ok(0) if filled == 0 => return Err(FrameError::Closed),
            Ok(0) => {
                return Err(FrameError::Truncated {
                    got: filled,
                    expected: 4,
                });
            }
            Ok(read) => filled += read,
            Err(error) if filled == 0 && is_gone(&error) => return Err(FrameError::Closed),
            Err(error) => return Err(FrameError::Io(error)),
        }
    }
    let announced = u32::from_be_bytes(header);
    let expected = announced as usize;
    if expected > limit {
        return Err(FrameError::TooLarge {
            announced: u64::from(announced),
            limit,
        });
    }
    // Grow with what actually arrives, never by what the header claims.
    let mut body = Vec::with_capacity(expected.min(64 * 1024));
    let got = reader
        .take(announced.into())
        .read_to_end(&mut body)
        .await
        .map_err(FrameError::Io)?;
    if got < expected {
        return Err(FrameError::Truncated { got, expected });
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trips() {
        let mut buffer = Vec::new();
        write_frame(&mut buffer, b"[1,2]").await.unwrap();
        assert_eq!(&buffer[..4], &[0, 0, 0, 5]);
        assert_eq!(
            read_frame(&mut buffer.as_slice(), 100).await.unwrap(),
            b"[1,2]"
        );
    }

    #[tokio::test]
    async fn tells_closed_from_truncated() {
        assert!(matches!(
            read_frame(&mut &b""[..], 100).await,
            Err(FrameError::Closed)
        ));
        assert!(matches!(
            read_frame(&mut &b"\0\0"[..], 100).await,
            Err(FrameError::Truncated {
                got: 2,
                expected: 4
            })
        ));
        assert!(matches!(
            read_frame(&mut &b"\0\0\0\x0aabc"[..], 100).await,
            Err(FrameError::Truncated {
                got: 3,
                expected: 10
            })
        ));
    }

    #[tokio::test]
    async fn refuses_a_huge_frame_before_reading_it() {
        let header = 0x8000_0000u32.to_be_bytes();
        let error = read_frame(&mut &header[..], 1 << 20).await.unwrap_err();
        assert!(matches!(
            error,
            FrameError::TooLarge {
                announced: 0x8000_0000,
                ..
            }
        ));
    }
}
