//! The checked wire view on arbitrary bytes: `Query::parse`, the record
//! walk, names; and every answer we build for a parsed query must walk
//! cleanly again and parse with hickory-proto.
#![no_main]

use glory_hole::wire::{self, Query, ResponseWriter, WireName};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wire::for_each_record(data, |r| {
        let mut name = WireName::new();
        let _ = wire::read_name(data, r.start, &mut name);
        let _ = wire::skip_name(data, r.start);
        let mut text = heapless::String::<256>::new();
        wire::name_to_text(&name, &mut text);
    });
    let mut out = Vec::new();
    wire::header_only_error(data, wire::RCODE_FORMERR, &mut out);
    let Ok(q) = Query::parse(data) else { return };
    let mut text = heapless::String::<256>::new();
    wire::name_to_text(&q.qname, &mut text);
    let _ = wire::text_to_name(&text);

    let mut w = ResponseWriter::new(&mut out, data, &q, wire::RCODE_NOERROR, true);
    w.record_at_qname(0, wire::TYPE_A, 60, &[192, 0, 2, 1]);
    w.negative_soa(0, 2);
    w.opt(1232, q.edns.do_bit);
    w.finish();
    let walked = wire::for_each_record(&out, |_| {});
    assert!(walked.is_ok(), "our own answer does not walk: {walked:?}");
    if let Err(e) = hickory_proto::op::Message::from_vec(&out) {
        panic!("our own answer does not parse with hickory-proto: {e}");
    }
});
