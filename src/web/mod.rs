//! STUB: to be replaced by the web UI (issue 5).
