//! The stand-in upstream's zone file, for the `stand-in-upstream` example
//! (the benchmarks' and the image test's internet): `name TYPE value`
//! lines read into per-name rules, every other name NXDOMAIN.
//!
//! Not for: scripting a stand-in inside a test; call `StandIn::set` there.

use super::upstream::{Behaviour, DEFAULT_TTL, Rec, RecData, StandIn, key};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::Path;

impl StandIn {
    /// Like [`StandIn::start`]; with a zone file (see [`parse_zone`]) the
    /// names in it get their records and every other name NXDOMAIN.
    pub async fn start_with_zone(
        addr: SocketAddr,
        zone_file: Option<&Path>,
    ) -> io::Result<StandIn> {
        let stand_in = StandIn::start(addr).await?;
        if let Some(path) = zone_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            let zone = parse_zone(&text).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?;
            stand_in.set_default(Behaviour::Nxdomain { soa_minimum: 60 });
            for (name, records) in zone {
                stand_in.set(&name, Behaviour::Answer { records });
            }
        }
        Ok(stand_in)
    }
}

/// Reads a zone file for [`run_standalone`]: one record per line,
/// `name TYPE value` with TYPE one of A, AAAA, CNAME, TXT (the rest of the
/// line); `#` starts a comment. Returns the records per lower-case name.
pub fn parse_zone(text: &str) -> Result<HashMap<String, Vec<Rec>>, String> {
    let mut zone: HashMap<String, Vec<Rec>> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, char::is_whitespace);
        let (Some(owner), Some(rtype), Some(value)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("line {}: expected 'name TYPE value'", i + 1));
        };
        let value = value.trim();
        let bad = |what: &str| format!("line {}: '{value}' is not {what}", i + 1);
        let data = match rtype.to_ascii_uppercase().as_str() {
            "A" => RecData::A(value.parse().map_err(|_| bad("an IPv4 address"))?),
            "AAAA" => RecData::Aaaa(value.parse().map_err(|_| bad("an IPv6 address"))?),
            "CNAME" => RecData::Cname(value.to_string()),
            "TXT" => RecData::Txt(value.to_string()),
            other => {
                return Err(format!(
                    "line {}: type '{other}' is not supported (use A, AAAA, CNAME or TXT)",
                    i + 1
                ));
            }
        };
        zone.entry(key(owner))
            .or_default()
            .push(Rec::new("", DEFAULT_TTL, data));
    }
    Ok(zone)
}

/// Runs a stand-in upstream until Ctrl-C, for the firmware image test;
/// see [`StandIn::start_with_zone`].
pub async fn run_standalone(addr: SocketAddr, zone_file: Option<&Path>) -> io::Result<()> {
    let stand_in = StandIn::start_with_zone(addr, zone_file).await?;
    tracing::info!(addr = %stand_in.addr(), "stand-in upstream serving UDP and TCP");
    tokio::signal::ctrl_c().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::ResponseCode;

    #[tokio::test]
    async fn zone_file_stand_in_answers_its_names_and_nxdomain_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zone.txt");
        std::fs::write(&path, "router.example A 192.0.2.254\n").unwrap();
        let s = StandIn::start_with_zone("127.0.0.1:0".parse().unwrap(), Some(&path))
            .await
            .unwrap();
        let m = crate::testing::client::ask(s.addr(), "Router.Example", 1).await;
        assert_eq!(crate::testing::client::answers(&m), vec!["192.0.2.254"]);
        let m = crate::testing::client::ask(s.addr(), "other.example", 1).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(s.queries("router.example"), 1);
        let err = StandIn::start_with_zone(
            "127.0.0.1:0".parse().unwrap(),
            Some(&dir.path().join("none")),
        )
        .await
        .err()
        .unwrap();
        assert!(err.to_string().contains("none"), "{err}");
    }

    #[test]
    fn zone_file_parses_and_reports_bad_lines() {
        let z = parse_zone(
            "# test zone\nExample.com A 192.0.2.10\nexample.com AAAA 2001:db8::10\nwww.example.com CNAME example.com\nt.example TXT hello world\n",
        )
        .unwrap();
        assert_eq!(z["example.com"].len(), 2);
        assert_eq!(z["t.example"][0].data, RecData::Txt("hello world".into()));
        assert_eq!(
            parse_zone("a.example A 300.1.1.1").unwrap_err(),
            "line 1: '300.1.1.1' is not an IPv4 address"
        );
        assert!(
            parse_zone("\nb.example MX 10 mx")
                .unwrap_err()
                .starts_with("line 2:")
        );
    }
}
