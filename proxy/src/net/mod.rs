//! Sockets: listeners, upstream connections and original destinations.

pub mod conn;
pub mod dns_cache;
pub mod listener;
pub mod local_addrs;
pub mod original_dst;
pub mod privileged;
pub mod read_ahead;
pub mod sni_peek;
pub mod upstream;
