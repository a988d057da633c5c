//! Sockets: listeners, upstream connections and original destinations.

pub mod conn;
pub mod listener;
pub mod original_dst;
pub mod privileged;
pub mod sni_peek;
pub mod upstream;
