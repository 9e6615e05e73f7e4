//! The store on its own: what is written is read back, and what cannot be read is
//! refused and left as it was.

use super::*;
use crate::records::End;
use redb::ReadableDatabase;

fn put(journal: &Journal, queue: &str, body: &str) -> (u64, Op) {
    let seq = journal.next_seq();
    (
        seq,
        Op::PutMessage {
            seq,
            queue: Arc::from(queue),
            redeliveries: 0,
            body: Bytes::from(body.to_owned()),
            lineage: None,
        },
    )
}

#[tokio::test]
async fn a_fan_out_childs_lineage_is_kept_beside_its_body() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path()).await.unwrap();
    let lineage = crate::branch::Lineage {
        root: "e1".into(),
        path: "1/3.0/2".into(),
    };
    let seq = journal.next_seq();
    journal
        .write(vec![Op::PutMessage {
            seq,
            queue: Arc::from("q"),
            redeliveries: 1,
            body: Bytes::from_static(b"{\"id\":\"e1-1\"}"),
            lineage: Some(lineage.clone()),
        }])
        .await
        .unwrap();
    let (plain, put_plain) = put(&journal, "q", "plain");
    journal.write(vec![put_plain]).await.unwrap();
    journal.close().await;
    let (journal, recovered) = Journal::open(dir.path()).await.unwrap();
    let kept: Vec<_> = recovered
        .messages
        .iter()
        .map(|m| (m.seq, m.body.clone(), m.lineage.clone(), m.redeliveries))
        .collect();
    assert_eq!(
        kept,
        vec![
            (
                seq,
                Bytes::from_static(b"{\"id\":\"e1-1\"}"),
                Some(lineage),
                1
            ),
            (plain, Bytes::from("plain"), None, 0),
        ]
    );
    journal.close().await;
}

#[test]
fn a_message_written_in_format_1_reads_without_a_lineage() {
    // Format 1: redeliveries, the name's length (no flag), the name, the body.
    let mut old = Vec::new();
    old.extend_from_slice(&4u32.to_le_bytes());
    old.extend_from_slice(&(1u16).to_le_bytes());
    old.extend_from_slice(b"q");
    old.extend_from_slice(b"{\"headers\":{\"wasya-root\":\"e\"}}");
    let read = layout::decode_message(&old).unwrap();
    assert_eq!(&*read.queue, "q");
    assert_eq!(read.redeliveries, 4);
    assert_eq!(read.lineage, None);
    assert_eq!(
        read.body,
        Bytes::from_static(b"{\"headers\":{\"wasya-root\":\"e\"}}")
    );
}

#[tokio::test]
async fn what_was_written_is_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, recovered) = Journal::open(dir.path()).await.unwrap();
    assert!(recovered.messages.is_empty());
    let (a, put_a) = put(&journal, "q", "a");
    let (b, put_b) = put(&journal, "q", "b");
    let (c, put_c) = put(&journal, "r", "c");
    journal.write(vec![put_a, put_b, put_c]).await.unwrap();
    journal.write_behind(vec![Op::RemoveMessage { seq: b }]);
    journal.write_behind(vec![Op::Delivery {
        seq: c,
        redeliveries: 2,
        in_flight: true,
    }]);
    journal.close().await;

    let (journal, recovered) = Journal::open(dir.path()).await.unwrap();
    let kept: Vec<_> = recovered
        .messages
        .iter()
        .map(|m| {
            (
                m.seq,
                &*m.queue,
                m.body.clone(),
                m.redeliveries,
                m.was_in_flight,
            )
        })
        .collect();
    assert_eq!(
        kept,
        vec![
            (a, "q", Bytes::from("a"), 0, false),
            (c, "r", Bytes::from("c"), 3, true)
        ]
    );
    assert!(journal.next_seq() > c, "numbers go on past what was kept");
    journal.close().await;
}

#[tokio::test]
async fn submissions_keep_their_ends_and_events_until_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path()).await.unwrap();
    for (order, id) in [(7, "first"), (9, "second")] {
        journal
            .write(vec![
                Op::Submitted {
                    id: id.into(),
                    order,
                },
                Op::Ended {
                    root: id.into(),
                    branch: String::new(),
                    end: End::Happy,
                    size: 12,
                    envelope: b"{}".to_vec(),
                },
                Op::Event {
                    root: id.into(),
                    seq: 1,
                    event: b"{\"seq\":1}".to_vec(),
                },
            ])
            .await
            .unwrap();
    }
    journal
        .write(vec![Op::Forget { id: "first".into() }])
        .await
        .unwrap();
    journal.close().await;
    let (journal, recovered) = Journal::open(dir.path()).await.unwrap();
    assert_eq!(recovered.submissions.len(), 1);
    let second = &recovered.submissions[0];
    assert_eq!((second.id.as_str(), second.order), ("second", 9));
    assert_eq!(second.ended.len(), 1);
    assert_eq!(second.ended[0].size, 12);
    assert_eq!(second.events, vec![b"{\"seq\":1}".to_vec()]);
    assert!(recovered.next_seq > 9);
    journal.close().await;
}

#[tokio::test]
async fn a_store_in_use_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path()).await.unwrap();
    let second = Journal::open(dir.path()).await;
    assert!(
        matches!(second, Err(JournalError::InUse { .. })),
        "{:?}",
        second.err()
    );
    journal.close().await;
}

async fn refused_and_untouched(bytes: Vec<u8>) -> JournalError {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    std::fs::write(&path, &bytes).unwrap();
    let error = Journal::open(dir.path())
        .await
        .expect_err("a damaged store is refused");
    assert!(std::fs::read(&path).unwrap() == bytes, "left as it was");
    error
}

#[tokio::test]
async fn garbage_is_refused_and_left_as_it_was() {
    let garbage: Vec<u8> = (0..100_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let error = refused_and_untouched(garbage).await;
    assert!(matches!(error, JournalError::Corrupt { .. }), "{error}");
    assert!(error.to_string().contains("left as it is"), "{error}");
}

#[tokio::test]
async fn a_truncated_store_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path()).await.unwrap();
    for chunk in 0..20 {
        let ops = (0..50)
            .map(|i| put(&journal, "q", &format!("{chunk}-{i}-{}", "x".repeat(500))).1)
            .collect();
        journal.write(ops).await.unwrap();
    }
    journal.close().await;
    let whole = std::fs::read(dir.path().join(FILE_NAME)).unwrap();
    let error = refused_and_untouched(whole[..whole.len() / 2].to_vec()).await;
    assert!(matches!(error, JournalError::Corrupt { .. }), "{error}");
}

#[tokio::test]
async fn a_store_of_a_newer_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    {
        let db = redb::Database::create(&path).unwrap();
        let write = db.begin_write().unwrap();
        write
            .open_table(layout::META)
            .unwrap()
            .insert("format", FORMAT + 1)
            .unwrap();
        write.commit().unwrap();
    }
    let error = Journal::open(dir.path()).await.expect_err("refused");
    assert!(matches!(error, JournalError::NewerFormat { .. }), "{error}");
    let db = redb::Database::create(&path).unwrap();
    let read = db.begin_read().unwrap();
    let format = read
        .open_table(layout::META)
        .unwrap()
        .get("format")
        .unwrap();
    assert_eq!(
        format.map(|v| v.value()),
        Some(FORMAT + 1),
        "kept as it was"
    );
}

#[tokio::test]
async fn writes_after_close_fail_as_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path()).await.unwrap();
    journal.close().await;
    let (_, op) = put(&journal, "q", "late");
    assert!(matches!(
        journal.write(vec![op]).await,
        Err(JournalError::Closed)
    ));
}
