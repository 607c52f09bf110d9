//! Test doubles for the outside world (the internet's DNS servers, list
//! download sites), used by the tests, the benchmarks and the image test.
//! Never used by the running server.

pub mod client;
pub mod upstream;
