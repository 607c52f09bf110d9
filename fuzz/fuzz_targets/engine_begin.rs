//! The whole synchronous half of a query, `Engine::begin`, on arbitrary
//! bytes: rate limit, wire view, client check, ANY, local records, private
//! names, filter, cache, the upstream share, and the slow path through
//! hickory-proto. A cache miss comes back as `Step::Forward` and is
//! dropped (no I/O). Every answer must parse with hickory-proto.
#![no_main]

use arc_swap::ArcSwap;
use glory_hole::dns::pipeline::{Engine, Step, Transport};
use glory_hole::events::{EventReceiver, EventSink};
use glory_hole::filter::Filter;
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

struct Fixture {
    engine: Engine,
    events: Mutex<EventReceiver>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let cfg = glory_hole_fuzz::config();
        let filter = Arc::new(ArcSwap::from_pointee(
            Filter::from_config(&cfg).expect("the fuzz config's filter compiles"),
        ));
        let (sink, events) = EventSink::bounded(64);
        let engine = Engine::new(Arc::new(cfg), filter, sink).expect("engine");
        Fixture {
            engine,
            events: Mutex::new(events),
        }
    })
}

/// Allowed and refused clients, v4 and v4-mapped v6, UDP and TCP; picked
/// by the input's length so an input always replays the same way.
const CLIENTS: [(&str, Transport); 4] = [
    ("192.168.1.20:5353", Transport::Udp),
    ("127.0.0.1:40000", Transport::Tcp),
    ("203.0.113.9:5353", Transport::Udp),
    ("[::ffff:192.168.1.20]:5353", Transport::Tcp),
];

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let (client, transport) = CLIENTS[data.len() % CLIENTS.len()];
    let client: SocketAddr = client.parse().unwrap();
    let mut out = Vec::new();
    match f.engine.begin(data, client, transport, &mut out) {
        Step::Reply => {
            if let Err(e) = hickory_proto::op::Message::from_vec(&out) {
                panic!("our answer does not parse with hickory-proto: {e}: {out:02x?}");
            }
        }
        Step::Drop | Step::Forward(_) => {}
    }
    let events = f.events.lock().unwrap();
    while events.try_recv().is_ok() {}
});
