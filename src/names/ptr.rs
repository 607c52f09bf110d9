//! Asking the router for a device's name: a PTR query for the address's
//! reverse name (`23.1.168.192.in-addr.arpa`), sent through a forwarder
//! of its own (fresh IDs and ports, the reply's question checked, the
//! config's timeouts), a few at a time, on tokio.
//!
//! Not for: deciding whom to ask or keeping the answers (`names`).

use super::{DeviceNames, LOOKUPS_AT_ONCE};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use std::net::IpAddr;
use std::sync::{Arc, Weak};
use tokio::sync::{Semaphore, mpsc};

/// Takes addresses off `asks` and asks the router about each, at most
/// `LOOKUPS_AT_ONCE` at a time; ends when the table is gone.
pub(super) async fn serve(names: Weak<DeviceNames>, mut asks: mpsc::Receiver<IpAddr>) {
    let slots = Arc::new(Semaphore::new(LOOKUPS_AT_ONCE));
    while let Some(ip) = asks.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(table) = names.upgrade() else {
            return;
        };
        let Some(router) = table.router.load_full() else {
            table.answered(ip, None);
            continue;
        };
        drop(table);
        let names = names.clone();
        tokio::spawn(async move {
            let name = ask(&router.forwarder, ip).await;
            if let Some(table) = names.upgrade() {
                table.answered(ip, name);
            }
            drop(slot);
        });
    }
}

/// The router's name for `ip`; None for no name, an error or no answer.
async fn ask(forwarder: &crate::dns::forward::Forwarder, ip: IpAddr) -> Option<String> {
    let mut q = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    q.metadata.recursion_desired = true;
    q.add_query(Query::query(Name::from(ip), RecordType::PTR));
    let bytes = q.to_vec().ok()?;
    let answer = match forwarder.query(&bytes).await {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!("names: asking the router about {ip}: {e}");
            return None;
        }
    };
    name_in(&answer.bytes)
}

/// The first PTR name in a NOERROR answer, without its final dot.
fn name_in(reply: &[u8]) -> Option<String> {
    let m = Message::from_vec(reply).ok()?;
    if m.metadata.response_code != ResponseCode::NoError {
        return None;
    }
    m.answers.iter().find_map(|r| match &r.data {
        RData::PTR(p) => {
            let name = p.0.to_utf8();
            let name = name.trim_end_matches('.');
            (!name.is_empty()).then(|| name.to_string())
        }
        _ => None,
    })
}
