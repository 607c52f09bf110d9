//! STUB: to be replaced by the query log (issue 4).
