//! Inputs the fuzz targets (fuzz/, docs/security.md "Fuzzing") found to
//! break something, each kept here as a regular test with the input
//! inline, sent to a real server over UDP.

mod support;

use glory_hole::testing::client::udp_raw;
use glory_hole::wire::{self, Query, WireError};
use hickory_proto::op::{Message, ResponseCode};
use std::time::Duration;

/// dns_wire, crash-3349b9142d7e41c613eb92ed7af3f076009230d6: a question
/// whose name is a compression pointer into the header (offset 9). It was
/// read as the root name and answered with the question copied verbatim,
/// so the answer's name pointed into the answer's own header: an answer
/// no resolver can read ("overlapping labels" in hickory-proto).
const POINTER_INTO_HEADER: &[u8] = &[
    0x00, 0x09, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // header
    0xc0, 0x09, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x0c, 0x00, 0x01, 0x00, 0x01,
];

#[test]
fn a_question_name_pointing_into_the_header_is_malformed() {
    assert_eq!(
        Query::parse(POINTER_INTO_HEADER).err(),
        Some(WireError::Malformed)
    );
    let mut name = wire::WireName::new();
    assert_eq!(
        wire::read_name(POINTER_INTO_HEADER, 12, &mut name),
        Err(WireError::Malformed)
    );
}

#[tokio::test]
async fn a_question_name_pointing_into_the_header_gets_a_readable_formerr() {
    let s =
        support::dns::start("[dns]\nlisten = [\"127.0.0.1:0\"]\nupstreams = [\"127.0.0.1:9\"]\n")
            .await;
    let answer = udp_raw(s.dns, POINTER_INTO_HEADER, Duration::from_secs(5))
        .await
        .expect("an answer");
    let m = Message::from_vec(&answer).expect("the answer parses");
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(m.metadata.id, 0x0009);
}

/// teleporter, crash-e737fecac50e3b5a38ddbd39b93e8df884369513: a Pi-hole
/// v6 archive (tests/data/pihole-v6-teleporter.zip with one byte changed)
/// whose gravity.db lists an adlist URL with a host that is no domain
/// name. The reader took every URL starting with http(s)://, so the merged
/// config failed validation and the whole import was refused when saved.
/// Now that list is skipped with why, and everything else is imported.
#[test]
fn a_teleporter_list_url_the_config_refuses_is_skipped_not_fatal() {
    use glory_hole::config::Config;
    use glory_hole::web::teleporter;
    let archive = std::fs::read("tests/data/fuzz-teleporter-bad-list-url.zip").unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let imported = teleporter::read(&archive, scratch.path()).unwrap();
    assert!(
        imported
            .skipped
            .iter()
            .any(|s| s.starts_with("adlist 'https://m\u{3}rror.example/")),
        "{:?}",
        imported.skipped
    );
    assert!(!imported.lists.is_empty(), "the good lists are still taken");
    let mut cfg = Config::default();
    teleporter::merge(&mut cfg, &imported);
    cfg.validate().unwrap();
    assert_eq!(cfg.filter.lists.len(), imported.lists.len());
}
