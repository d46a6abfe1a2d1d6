//! Protocol frames: parsing a client `send` frame into domain types, and encoding the
//! server's `ack` and `message` frames (a `MessageJson` built from a stored `Event`).
//!
//! Run: `cargo bench --bench protocol`.

use std::hint::black_box;
use std::time::Duration;

use actors::domain::{
    ClientId, ConversationId, Event, EventId, EventKind, MessageBody, MessageContent, Timestamp,
    UserId,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parley::realtime::protocol::{OutFrame, parse};
use parley::wire::MessageJson;

/// The body the load generator sends: 100 bytes.
fn body() -> String {
    format!("{:020} {}", 1_700_000_000_000_000_000u64, "x".repeat(79))
}

fn message() -> Event {
    let (a, b) = (UserId::generate(), UserId::generate());
    Event {
        id: EventId::generate(),
        conversation: ConversationId::direct(a, b),
        seq: 123_456,
        sender: a,
        client_id: Some(ClientId::parse("c17-000123").expect("valid client id")),
        at: Timestamp::now(),
        kind: EventKind::Message(MessageContent {
            receiver: Some(b),
            ..MessageContent::text(MessageBody::parse(&body(), 4096).expect("valid body"))
        }),
    }
}

fn frames(c: &mut Criterion) {
    let to = UserId::generate();
    let send = format!(
        r#"{{"type":"send","receiverId":"{to}","content":"{}","clientId":"c17-000123"}}"#,
        body()
    );
    let mut g = c.benchmark_group("protocol");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_send", |b| {
        b.iter(|| parse(black_box(&send), 4096).expect("parses"))
    });
    let m = message();
    g.bench_function("encode_ack", |b| {
        b.iter(|| {
            let m = black_box(&m);
            OutFrame::Ack {
                client_id: m.client_id.as_ref().map(ClientId::as_str),
                duplicate: false,
                message: MessageJson::from(m),
            }
            .encode()
        })
    });
    g.bench_function("encode_message", |b| {
        b.iter(|| {
            OutFrame::Message {
                message: MessageJson::from(black_box(&m)),
            }
            .encode()
        })
    });
    // The parts of `encode_message`: building the wire struct (ids to strings, RFC 3339
    // time) and serialising it.
    g.bench_function("message_json_from", |b| {
        b.iter(|| MessageJson::from(black_box(&m)))
    });
    let json = MessageJson::from(&m);
    g.bench_function("message_json_to_string", |b| {
        b.iter(|| serde_json::to_string(black_box(&json)).expect("serialises"))
    });
    g.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
