//! An upstream's reply through the forwarder's checks
//! (`forward::accept_reply`: a response, our ID, our question), then what
//! the pipeline does with an accepted one: the filter's look at its CNAMEs
//! and addresses, a cache insert and a cache hit.
//!
//! Input: a big-endian u16 length, the query as sent upstream, the reply.
#![no_main]

use glory_hole::dns::cache::{Cache, CacheKey};
use glory_hole::dns::forward;
use glory_hole::filter::Filter;
use glory_hole::wire::{self, Query};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

struct Fixture {
    filter: Filter,
    cache: Cache,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let cfg = glory_hole_fuzz::config();
        Fixture {
            filter: Filter::from_config(&cfg).expect("the fuzz config's filter compiles"),
            cache: Cache::new(&cfg.cache),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some(len) = wire::read_u16(data, 0) else {
        return;
    };
    let Some((sent, reply)) = data[2..].split_at_checked(len as usize) else {
        return;
    };
    let caller_id = 0x5a5a;
    let Ok(answer) = forward::accept_reply(sent, reply, caller_id) else {
        return;
    };
    assert_eq!(wire::read_u16(&answer, 0), Some(caller_id));
    let f = fixture();
    let _ = f
        .filter
        .check_answer(&answer, "192.168.1.20".parse().unwrap());
    let Ok(q) = Query::parse(sent) else { return };
    let key = CacheKey::from_query(&q);
    f.cache.insert(&key, &answer);
    let question = &sent[wire::field::HEADER_LEN..q.question_end];
    let mut out = Vec::new();
    let _ = f.cache.get(&key, caller_id, question, false, &mut out);
});
