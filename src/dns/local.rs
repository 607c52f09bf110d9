//! Local authority (stub).
use crate::config::RecordType;
pub fn parse_rdata(_t: RecordType, _v: &str) -> Result<Vec<u8>, String> {
    Ok(vec![])
}
