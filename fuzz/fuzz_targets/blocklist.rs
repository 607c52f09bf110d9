//! A downloaded list body as the box takes it: the content check, then
//! every line in its own syntax (hosts, plain domains, Adblock, dnsmasq)
//! into the compact index, where the first rule's name must be found.
#![no_main]

use glory_hole::filter::index::{Index, IndexBuilder, hash_name};
use glory_hole::filter::parse::parse_list;
use glory_hole::filter::update::check_content;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = check_content(data);
    let mut builder = IndexBuilder::new(7, 64);
    let mut first = None;
    let stats = parse_list(data, |r| {
        first.get_or_insert_with(|| r.domain.to_string());
        let _ = builder.add(&r.domain, 0, r.action, r.subdomains);
    })
    .expect("reading from a byte slice cannot fail");
    assert!(stats.rules == 0 || first.is_some());
    let Ok(compiled) = builder.finish() else {
        return;
    };
    let Ok(index) = Index::from_compiled(compiled) else {
        return;
    };
    if let Some(name) = first {
        let found = index.probe(hash_name(7, &name));
        assert!(found.is_some(), "rule for {name:?} not in the index");
    }
});
